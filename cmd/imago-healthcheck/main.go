// Command imago-healthcheck is the container health check of imago's images,
// which have no shell and no curl: it GETs a URL and exits 0 when the answer is
// 2xx, 1 (saying why) when it is not or none comes within the timeout.
//
//	imago-healthcheck http://127.0.0.1:8080/readyz     # imago serve: Temporal answers
//	imago-healthcheck http://127.0.0.1:9464/metrics    # imago-worker: the process serves
//
// docker-compose.yml runs it as the healthcheck of the imago-worker and imago-api services.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run checks the URL in args and returns the exit code.
func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("imago-healthcheck", flag.ContinueOnError)
	fs.SetOutput(stderr)
	timeout := fs.Duration("timeout", 3*time.Second, "how long to wait for the answer")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), `Usage: imago-healthcheck [--timeout 3s] URL

GETs URL; exits 0 on a 2xx answer, 1 otherwise, 2 on bad usage.

Example:
  imago-healthcheck http://127.0.0.1:8080/readyz

Flags:
`)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() != 1 {
		fmt.Fprintln(stderr, "imago-healthcheck: want exactly one URL, e.g. imago-healthcheck http://127.0.0.1:8080/readyz")
		return 2
	}
	target := fs.Arg(0)
	if u, err := url.Parse(target); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		fmt.Fprintf(stderr, "imago-healthcheck: %q is not an http(s) URL such as http://127.0.0.1:8080/readyz\n", target)
		return 2
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		fmt.Fprintf(stderr, "imago-healthcheck: %v\n", err)
		return 2
	}
	// The context bounds the whole request; no proxy from the environment: the
	// check is of this host's own service.
	client := &http.Client{Transport: &http.Transport{
		Proxy:               nil,
		DialContext:         (&net.Dialer{Timeout: *timeout}).DialContext,
		TLSHandshakeTimeout: *timeout,
		DisableKeepAlives:   true,
	}}
	resp, err := client.Do(req)
	if err != nil {
		fmt.Fprintf(stderr, "imago-healthcheck: unhealthy: GET %s: %v\n", target, err)
		return 1
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		fmt.Fprintf(stderr, "imago-healthcheck: unhealthy: GET %s: %s %s\n", target, resp.Status, strings.TrimSpace(string(body)))
		return 1
	}
	fmt.Fprintf(stdout, "healthy: GET %s: %s\n", target, resp.Status)
	return 0
}
