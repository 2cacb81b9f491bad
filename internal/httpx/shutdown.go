package httpx

import (
	"net"
	"net/http"
	"sync"
)

// SilentConns are a server's connections that were accepted but have not
// delivered a whole first request yet (http.StateNew).
//
// http.Server.Shutdown closes idle keep-alive connections at once, but it
// counts a new connection as idle only once it is five seconds old (net/http's
// closeIdleConns, golang/go#22682), so one such connection makes every graceful
// shutdown take 5–6 s. Clients leave them behind all the time: net/http's
// Transport dials a spare connection when every pooled one is busy and parks it,
// unused, when a busy one comes back first. The local router does that to every
// instance under load, so terminating a sim fleet after a cutover waited ~5.85 s.
// A connection without a whole request has no work to finish (Shutdown has
// closed the listeners, and net/http closes the same connections itself after
// 5 s), so Shutdown may close it at once; requests being served are still
// waited for.
//
// net/http has no option for this (the 5 s is a constant), hence these few
// lines of our own.
type SilentConns struct {
	mu    sync.Mutex
	conns map[net.Conn]struct{}
}

// CloseSilentConnsOnShutdown makes srv.Shutdown close srv's silent connections
// at once. It chains srv's own ConnState hook, if any; call it once per server,
// before Serve.
func CloseSilentConnsOnShutdown(srv *http.Server) *SilentConns {
	s := &SilentConns{conns: map[net.Conn]struct{}{}}
	next := srv.ConnState
	srv.ConnState = func(c net.Conn, st http.ConnState) {
		s.mu.Lock()
		if st == http.StateNew {
			s.conns[c] = struct{}{}
		} else {
			delete(s.conns, c)
		}
		s.mu.Unlock()
		if next != nil {
			next(c, st)
		}
	}
	srv.RegisterOnShutdown(s.Close)
	return s
}

// Close closes every connection that has not started a request.
func (s *SilentConns) Close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		c.Close()
		delete(s.conns, c)
	}
}
