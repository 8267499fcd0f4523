"""make install gives a tree that LibVMI programs build against unchanged:
headers as libvmi/libvmi.h, the library, and a pkg-config file."""
import os
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from pyt import ROOT, check, main, run  # noqa: E402


def install(prefix):
    p = run(["make", "-s", "install", f"PREFIX={prefix}"], cwd=ROOT,
            timeout=600)
    check(p.returncode == 0, f"make install failed:\n{p.stdout}{p.stderr}")


def test_install_layout():
    with tempfile.TemporaryDirectory() as d:
        install(d)
        for rel in ["include/libvmi/libvmi.h", "include/tinyvmi/tinyvmi.h",
                    "lib/libtinyvmi.a", "lib/libtinyvmi.so",
                    "lib/pkgconfig/tinyvmi.pc", "bin/tinyvmi"]:
            check(os.path.exists(os.path.join(d, rel)), f"missing {rel}")


def test_libvmi_program_builds_and_runs():
    """A LibVMI-style program compiles with pkg-config flags and runs on a
    raw image (physical reads work; no registers, so no paging)."""
    with tempfile.TemporaryDirectory() as d:
        install(d)
        env = dict(os.environ, PKG_CONFIG_PATH=os.path.join(d, "lib",
                                                            "pkgconfig"))
        flags = run(["pkg-config", "--cflags", "--libs", "--static",
                     "tinyvmi"], env=env)
        check(flags.returncode == 0, flags.stderr)
        exe = os.path.join(d, "prog")
        src = os.path.join(ROOT, "tests", "data", "libvmi_style.c")
        cc = run(["cc", "-std=c11", "-Wall", "-Werror", "-o", exe, src,
                  *flags.stdout.split(), "-Wl,-rpath," + os.path.join(d, "lib")],
                 env=env)
        check(cc.returncode == 0, f"compile failed:\n{cc.stderr}")
        image = os.path.join(d, "mem.raw")
        with open(image, "wb") as f:
            f.write(bytes(range(256)) * 256)
        out = run([exe, image])
        check(out.returncode == 0, out.stdout + out.stderr)
        check("pa0 706050403020100" in out.stdout, out.stdout)
        check("memsize 65536" in out.stdout, out.stdout)
        check("pa8 b0a0908" in out.stdout, out.stdout)
        check("Sanitizer" not in out.stderr)


if __name__ == "__main__":
    main(globals())
