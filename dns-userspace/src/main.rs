fn main() -> anyhow::Result<()> {
    let mut x = xdpdns::xdp::XdpServer::load()?;
    println!("loaded; counters {:?}", x.counters()?);
    let _ = &mut x;
    Ok(())
}
