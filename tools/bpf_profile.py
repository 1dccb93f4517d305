#!/usr/bin/env python3
"""Maps perf samples in JITed BPF programs to source lines, from the programs' line info
(BPF_OBJ_GET_INFO_BY_FD) and BTF strings. usage: bpf_profile.py STACKS TAG... (loaded now)"""
import ctypes, struct, sys, os, re, collections, subprocess

libc = ctypes.CDLL(None, use_errno=True)
SYS_bpf = 321

def bpf(cmd, attr):
    buf = ctypes.create_string_buffer(attr, 128)
    r = libc.syscall(SYS_bpf, cmd, buf, 128)
    if r < 0:
        raise OSError(ctypes.get_errno(), "bpf cmd %d" % cmd)
    return r, buf

def prog_fd(pid):
    return bpf(13, struct.pack("III", pid, 0, 0))[0]

def info(fd, size, fill=None):
    ibuf = ctypes.create_string_buffer(fill or b"\0" * size, size)
    bpf(15, struct.pack("IIQ", fd, size, ctypes.addressof(ibuf)))
    return ibuf

def prog_info(pid):
    fd = prog_fd(pid)
    b = info(fd, 232)
    raw = b.raw
    nr_ksyms, nr_lens = struct.unpack_from("II", raw, 104)
    btf_id, = struct.unpack_from("I", raw, 128)
    nr_line, = struct.unpack_from("I", raw, 148)
    nr_jline, lrs, jlrs = struct.unpack_from("III", raw, 168)
    ks = ctypes.create_string_buffer(8 * nr_ksyms)
    lens = ctypes.create_string_buffer(4 * nr_lens)
    li = ctypes.create_string_buffer(lrs * nr_line)
    jli = ctypes.create_string_buffer(jlrs * nr_jline)
    req = bytearray(232)
    struct.pack_into("II", req, 104, nr_ksyms, nr_lens)
    struct.pack_into("QQ", req, 112, ctypes.addressof(ks), ctypes.addressof(lens))
    struct.pack_into("I", req, 148, nr_line)
    struct.pack_into("QQ", req, 152, ctypes.addressof(li), ctypes.addressof(jli))
    struct.pack_into("III", req, 168, nr_jline, lrs, jlrs)
    info(fd, 232, bytes(req))
    ksyms = struct.unpack("%dQ" % nr_ksyms, ks.raw)
    lines = [struct.unpack_from("IIII", li.raw, i * lrs) for i in range(nr_line)]
    jaddr = struct.unpack("%dQ" % nr_jline, jli.raw)
    # BTF strings
    bfd = bpf(19, struct.pack("III", btf_id, 0, 0))[0]
    bi = info(bfd, 32).raw
    size, = struct.unpack_from("I", bi, 8)
    bb = ctypes.create_string_buffer(size)
    req = bytearray(32)
    struct.pack_into("QI", req, 0, ctypes.addressof(bb), size)
    info(bfd, 32, bytes(req))
    raw = bb.raw
    hdr_len, type_off, type_len, str_off, str_len = struct.unpack_from("IIIII", raw, 4)
    strs = raw[hdr_len + str_off: hdr_len + str_off + str_len]
    def s(o):
        e = strs.index(b"\0", o)
        return strs[o:e].decode(errors="replace")
    out = []
    for (ioff, fo, lo, lc), a in zip(lines, jaddr):
        out.append((a, os.path.basename(s(fo)), lc >> 10, s(lo).strip()))
    out.sort()
    return ksyms, out

HERE = os.path.dirname(os.path.abspath(__file__))
OWN = set(os.listdir(os.path.join(HERE, "../dns-ebpf/src"))) | set(
    os.listdir(os.path.join(HERE, "../dns-common/src")))
OWN.discard("lib.rs")  # name shared with core's; dns-common's lib.rs lines show as library


def main():
    stacks, tags = sys.argv[1], sys.argv[2:]
    # Samples in a subprogram are its own (not its caller's): its frame is matched by ksym.
    show = subprocess.run(["bpftool", "prog", "show"], capture_output=True, text=True).stdout
    ids = {}
    for m in re.finditer(r"^(\d+): \w+\s+name (\w+)\s+tag (\w+)", show, re.M):
        if m.group(3) in tags:
            ids[m.group(3)] = int(m.group(1))
    # ksym name -> address, from the programs' infos: bpf_prog_TAG_NAME of each function
    kall = {}
    for line in open("/proc/kallsyms"):
        p = line.split()
        if len(p) >= 3 and p[2].startswith("bpf_prog_"):
            kall[p[2]] = int(p[0], 16)
    table = []
    subs = set()
    for tag, pid in ids.items():
        ks, lines = prog_info(pid)
        table += lines
        subs.update(ks)
    table.sort()
    # The programs' functions by ksym: the main ones and their BPF subprograms (bpf_loop
    # callbacks, BPF functions), which have tags of their own.
    funcs = {name for name, a in kall.items() if a in subs}
    addrs = [t[0] for t in table]
    import bisect
    c = collections.Counter(); tot = 0
    g = collections.Counter()
    stack = []
    def flush():
        nonlocal tot
        # TEST_RUN samples only, unless ANY_STACK (a load run: the programs in the NAPI thread).
        if len(stack) > 1 and (os.environ.get("ANY_STACK") or any("bpf_test_run" in f for f in stack[1:])):
            for fr in stack[1:]:
                m = re.search(r"(bpf_prog_\w+)\+0x([0-9a-f]+)", fr)
                if m and m.group(1) in funcs:
                    a = kall[m.group(1)] + int(m.group(2), 16)
                    i = bisect.bisect_right(addrs, a) - 1
                    leaf = stack[1].split()[1].split("+")[0]
                    helper = "" if leaf.startswith("bpf_prog_") else " [" + leaf + "]"
                    if i >= 0:
                        t = table[i]
                        where = ""
                        if t[1] not in OWN:
                            # library code inlined: the nearest project line before it
                            j = i
                            while j > 0 and table[j][1] not in OWN:
                                j -= 1
                            where = "  (after %s:%d)" % (table[j][1], table[j][2])
                        c["%s:%d %s%s%s" % (t[1], t[2], t[3][:60], helper, where)] += 1
                        own = table[j] if where else t
                        g["%s:%d" % (own[1], own[2])] += 1
                    tot += 1
                    break
    for line in open(stacks):
        s = line.rstrip("\n")
        if not s.strip():
            flush(); stack.clear(); continue
        stack.append(s.strip())
    flush()
    print("samples in programs:", tot)
    print("by project line (library code and helpers counted at the line before them):")
    for k, v in g.most_common(int(os.environ.get("TOP", "70"))):
        print("%5.1f%% %s" % (v * 100 / tot, k))
    print("by line:")
    for k, v in c.most_common(int(os.environ.get("TOP", "70"))):
        print("%5.1f%% %s" % (v * 100 / tot, k))

main()
