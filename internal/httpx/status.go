// Package httpx holds the net/http helpers imago's HTTP servers (the REST API,
// the codec server, the local router, /metrics) share.
package httpx

import (
	"net/http"
	"time"
)

// StatusWriter remembers the status of a response: 0 until the header is written
// (informational 1xx answers do not count), 200 when the body starts without one.
type StatusWriter struct {
	http.ResponseWriter
	Status int
}

// WriteHeader records the first final status code.
func (w *StatusWriter) WriteHeader(code int) {
	if w.Status == 0 && code >= 200 {
		w.Status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

// Write records an implicit 200.
func (w *StatusWriter) Write(b []byte) (int, error) {
	if w.Status == 0 {
		w.Status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection (flush, deadlines).
func (w *StatusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// Timeouts of an http.Server: every server imago runs has all four.
type Timeouts struct {
	ReadHeader time.Duration // the request's header (slowloris)
	Read       time.Duration // the whole request, body included
	Write      time.Duration // from the end of the header to the end of the answer
	Idle       time.Duration // a kept-alive connection waiting for its next request
}

// ShortTimeouts suit an endpoint whose requests are small and answers quick:
// the router's admin port, /metrics, the local provider's sim control, the
// example service.
var ShortTimeouts = Timeouts{ReadHeader: 10 * time.Second, Read: 30 * time.Second, Write: time.Minute, Idle: 2 * time.Minute}

// NewServer is an http.Server for h with timeouts t, whose Shutdown does not
// wait for connections that never sent a request (see SilentConns).
func NewServer(h http.Handler, t Timeouts) *http.Server {
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: t.ReadHeader,
		ReadTimeout:       t.Read,
		WriteTimeout:      t.Write,
		IdleTimeout:       t.Idle,
		MaxHeaderBytes:    64 << 10,
	}
	CloseSilentConnsOnShutdown(srv)
	return srv
}
