package codec

import "time"

// ShortenTimeouts gives s (before Serve) every timeout d, so a test sees the
// server drop a slow or idle client without waiting for the real ones.
func ShortenTimeouts(s *Server, d time.Duration) { s.timeouts = timeouts{d, d, d, d} }
