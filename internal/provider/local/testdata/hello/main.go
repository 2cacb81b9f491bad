// Command hello is the test application of the local driver's tests: an HTTP
// server on 127.0.0.1:$PORT that answers / with its version, /healthz with 200,
// /whoami with its pid and instance, /slow?d=1s after a delay (/inflight counts
// slow requests in progress), /env/NAME with its environment variable NAME (404
// when unset), and exits gracefully on SIGTERM. -port overrides $PORT.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"
	"time"
)

var version = "dev" // -ldflags "-X main.version=..." or -version

func main() {
	flag.StringVar(&version, "version", version, "version to answer with")
	port := flag.String("port", "", "port to listen on (default $PORT)")
	flag.Parse()
	if *port == "" {
		*port = os.Getenv("PORT")
	}
	serve(*port)
}

func serve(port string) {
	if port == "" {
		log.Fatal("PORT is not set")
	}
	instance := os.Getenv("IMAGO_INSTANCE_ID")
	var inflight atomic.Int64
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Instance", instance)
		io.WriteString(w, version)
	})
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })
	mux.HandleFunc("/whoami", func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(map[string]any{"pid": os.Getpid(), "instance": instance, "version": version})
	})
	mux.HandleFunc("/slow", func(w http.ResponseWriter, r *http.Request) {
		inflight.Add(1)
		defer inflight.Add(-1)
		d, _ := time.ParseDuration(r.URL.Query().Get("d"))
		select {
		case <-time.After(d):
		case <-r.Context().Done():
			return
		}
		io.WriteString(w, version)
	})
	mux.HandleFunc("/env/{name}", func(w http.ResponseWriter, r *http.Request) {
		v, ok := os.LookupEnv(r.PathValue("name"))
		if !ok {
			http.NotFound(w, r)
			return
		}
		io.WriteString(w, v)
	})
	mux.HandleFunc("/inflight", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, inflight.Load())
	})
	ln, err := net.Listen("tcp", "127.0.0.1:"+port)
	if err != nil {
		log.Fatal(err)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second,
		WriteTimeout: time.Minute, IdleTimeout: 2 * time.Minute}
	go srv.Serve(ln)
	log.Printf("hello %s (instance %s) serving on %s", version, instance, ln.Addr())
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	<-ctx.Done()
	stop()
	log.Printf("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	srv.Shutdown(sctx)
}
