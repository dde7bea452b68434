// jemalloc's settings, compiled into the proxy (jemalloc reads this symbol
// once, at its start):
// - background_thread: a thread of jemalloc's own returns freed pages to the
//   system even while the proxy's threads sleep (otherwise purging waits for
//   the next allocation, which an idle proxy never makes);
// - dirty_decay_ms: freed pages are returned within about a second (the
//   default, 10 s, kept most of the memory of 10,000 clients that had left
//   when it was measured 7 s later);
// - muzzy_decay_ms 0: returned with MADV_DONTNEED, which lowers RSS at once
//   (MADV_FREE would leave them counted until the kernel needs them).
// An operator can still override them with the MALLOC_CONF environment variable.
extern "C" {
// NOLINTNEXTLINE: the name is jemalloc's.
const char* malloc_conf = "background_thread:true,dirty_decay_ms:1000,muzzy_decay_ms:0";
}
