// Package pprofdebug serves net/http/pprof from a process built with the build
// tag imago_pprof, for profiling imago-worker and imago-bench while a benchmark
// runs (docs/performance.md). Other builds hold nothing but the constant below:
// importing the package (for its side effect) changes nothing in them.
//
// In a tagged build, with IMAGO_PPROF_DIR set to an existing directory, the
// process listens on a free 127.0.0.1 port, writes that address to
// DIR/<program>-<pid>.addr (0600) and turns on the mutex and block profiles.
// Loopback only: the profiles show the process's memory.
package pprofdebug

// EnvVar names the directory the listening address is written to.
const EnvVar = "IMAGO_PPROF_DIR"
