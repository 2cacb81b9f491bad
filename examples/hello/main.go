// Command hello is imago's example service: `/` answers with its version and
// `/healthz` says whether it is up. Build a version with
//
//	go build -ldflags "-X main.version=v2" -o hello ./examples/hello
//
// It listens on $PORT (imago's local provider sets it) and drains in-flight
// requests on SIGTERM.
package main

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"
)

var (
	version = "dev"
	// startDelay (a duration, set with -ldflags) makes the app slow to become
	// healthy, as a real service warming caches is.
	startDelay = "0s"
)

func main() {
	port := os.Getenv("PORT")
	if port == "" {
		port = "8080"
	}
	delay, err := time.ParseDuration(startDelay)
	if err != nil {
		log.Fatalf("bad startDelay %q: %v", startDelay, err)
	}
	ready := time.Now().Add(delay)

	mux := http.NewServeMux()
	mux.HandleFunc("/{$}", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "hello from %s\n", version)
	})
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		if time.Now().Before(ready) {
			http.Error(w, "warming up", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("/version", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, version)
	})

	ln, err := net.Listen("tcp", "127.0.0.1:"+port)
	if err != nil {
		log.Fatal(err)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	log.Printf("hello %s listening on %s", version, ln.Addr())

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	go func() {
		<-ctx.Done()
		shutdown, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = srv.Shutdown(shutdown)
	}()
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Fatal(err)
	}
	log.Printf("hello %s stopped", version)
}
