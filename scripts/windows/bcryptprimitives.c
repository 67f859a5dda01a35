/*
 * A stand-in for Windows' bcryptprimitives.dll, for running the core's Rust
 * tests under Wine only. It is never shipped and never goes into a wheel:
 * real Windows (10 and later) has the DLL, and the wheel's _core.pyd links
 * against that one.
 *
 * Why: Rust's standard library on Windows (since 1.78) gets its random
 * bytes from ProcessPrng in bcryptprimitives.dll. Wine 8.0 has no such DLL,
 * so every Windows test binary stops at load time with status c0000135.
 * This DLL exports that one function and fills the buffer with advapi32's
 * RtlGenRandom (exported as SystemFunction036), which Wine implements.
 *
 * Built by scripts/windows.sh:
 *   x86_64-w64-mingw32-gcc -O2 -shared -o bcryptprimitives.dll \
 *       bcryptprimitives.c -ladvapi32 -Wl,--kill-at
 */
#include <windows.h>

/* RtlGenRandom; the name advapi32 exports it under. */
BOOLEAN WINAPI SystemFunction036(PVOID buffer, ULONG length);

/* ProcessPrng never fails on Windows; here a failure of RtlGenRandom is
 * reported rather than hidden, and std aborts on it. */
__declspec(dllexport) BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T length)
{
    /* RtlGenRandom takes a ULONG (32 bits): fill in chunks below 4 GiB. */
    const SIZE_T chunk = 0x40000000;
    while (length > 0) {
        ULONG n = (ULONG)(length < chunk ? length : chunk);
        if (!SystemFunction036(data, n))
            return FALSE;
        data += n;
        length -= n;
    }
    return TRUE;
}
