//go:build imago_pprof

package pprofdebug

import (
	"fmt"
	"net"
	"net/http"
	_ "net/http/pprof" // registers /debug/pprof on http.DefaultServeMux
	"os"
	"path/filepath"
	"runtime"
)

func init() {
	dir := os.Getenv(EnvVar)
	if dir == "" {
		return
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, "pprofdebug:", err)
		return
	}
	name := fmt.Sprintf("%s-%d.addr", filepath.Base(os.Args[0]), os.Getpid())
	if err := os.WriteFile(filepath.Join(dir, name), []byte(ln.Addr().String()), 0o600); err != nil {
		fmt.Fprintln(os.Stderr, "pprofdebug:", err)
		ln.Close()
		return
	}
	runtime.SetMutexProfileFraction(10)
	runtime.SetBlockProfileRate(100_000) // blocking events of 100 µs and more
	go http.Serve(ln, nil)
}
