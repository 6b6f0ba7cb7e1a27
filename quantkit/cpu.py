"""What the host CPU offers for INT8: the flags that decide which kernels onnxruntime can use."""

from __future__ import annotations

import functools
import os
import platform

INT8_FLAGS = (
    "avx2",
    "avx512f",
    "avx512_vnni",
    "avx512vnni",
    "avx_vnni",
    "avxvnni",
    "amx_int8",
    "amx_tile",
    "neon",
    "asimddp",
)


@functools.lru_cache(maxsize=None)
def cpu_info() -> dict:
    """Brand and the INT8-relevant flags, from /proc/cpuinfo where present, else py-cpuinfo."""
    flags: set[str] = set()
    brand = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                key, _, value = line.partition(":")
                key = key.strip()
                if key in ("flags", "Features") and not flags:
                    flags = set(value.split())
                elif key == "model name" and brand in (platform.processor(), platform.machine()):
                    brand = value.strip()
    except OSError:
        import cpuinfo  # py-cpuinfo, installed with pytest-benchmark

        info = cpuinfo.get_cpu_info()
        flags, brand = set(info.get("flags", [])), info.get("brand_raw", brand)
    return {"brand": brand, "flags": sorted(f for f in flags if f in INT8_FLAGS)}


def has_vnni() -> bool:
    """True where the CPU has a dot-product INT8 instruction (VNNI, AMX, or Arm's dotprod)."""
    return any(
        f in cpu_info()["flags"] for f in ("avx512_vnni", "avx512vnni", "avx_vnni", "avxvnni", "amx_int8", "asimddp")
    )


def int8_level() -> str:
    """The best INT8 instruction class of this CPU: amx, vnni, avx512, avx2, dotprod, neon or none."""
    flags = set(cpu_info()["flags"])
    for level, names in (
        ("amx", {"amx_int8", "amx_tile"}),
        ("vnni", {"avx512_vnni", "avx512vnni", "avx_vnni", "avxvnni"}),
        ("avx512", {"avx512f"}),
        ("avx2", {"avx2"}),
        ("dotprod", {"asimddp"}),
        ("neon", {"neon"}),
    ):
        if flags & names:
            return level
    return "none"


def cpu_class(threads: int | None = None) -> str:
    """What a committed latency baseline is compared within: vendor, INT8 instruction class and threads,
    e.g. 'AMD vnni 1t' — similar CI machines match; the exact model, core count and onnxruntime do not
    have to (an onnxruntime upgrade that slows INT8 is what the baseline is there to catch)."""
    brand = cpu_info()["brand"].lower()
    vendor = next(
        (v for k, v in (("amd", "AMD"), ("intel", "Intel"), ("xeon", "Intel"), ("apple", "Apple")) if k in brand),
        platform.machine(),
    )
    return f"{vendor} {int8_level()}" + (f" {threads}t" if threads else "")


def fingerprint(threads: int | None = None) -> dict:
    """What a latency figure is only comparable under: CPU brand and INT8 flags, cores, onnxruntime."""
    import onnxruntime

    info = cpu_info()
    return {
        "cpu": info["brand"],
        "int8_flags": info["flags"],
        "cores": os.cpu_count(),
        "threads": threads,
        "onnxruntime": onnxruntime.__version__,
        "class": cpu_class(threads),
    }
