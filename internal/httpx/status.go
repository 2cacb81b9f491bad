// Package httpx holds the net/http helpers imago's HTTP servers (the REST API,
// the codec server and the local router) share.
package httpx

import "net/http"

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
