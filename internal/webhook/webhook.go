// Package webhook posts JSON to the URLs a rollout spec names (hooks and
// notifications) and signs hook requests.
//
// A signed request carries, like GitHub's webhooks:
//
//	X-Imago-Signature: sha256=<hex of HMAC-SHA256(key, raw body)>
//	X-Imago-Timestamp: <Unix seconds>   (also the body's "timestamp", which the signature covers)
//	X-Imago-Delivery:  <an ID that is the same for every retry of one delivery>
//
// A receiver computes the HMAC over the raw body bytes it received (before any
// JSON decoding), compares it in constant time (Verify), and refuses a
// timestamp older than it tolerates (a replayed request).
//
// Requests go through the client the caller gives, which must be the outbound
// guard's (netguard.Guard.Client): a spec cannot make the worker reach the
// cloud metadata service or inner networks.
package webhook

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
)

// Headers of a signed request.
const (
	SignatureHeader = "X-Imago-Signature"
	TimestampHeader = "X-Imago-Timestamp"
	DeliveryHeader  = "X-Imago-Delivery"
)

const sigPrefix = "sha256="

// Sign is the X-Imago-Signature of body under key: sha256=<hex HMAC-SHA256>.
func Sign(key, body []byte) string {
	m := hmac.New(sha256.New, key)
	m.Write(body)
	return sigPrefix + hex.EncodeToString(m.Sum(nil))
}

// Verify tells, in constant time, whether sig is body's signature under key.
func Verify(key, body []byte, sig string) bool {
	got, ok := strings.CutPrefix(sig, sigPrefix)
	if !ok {
		return false
	}
	mac, err := hex.DecodeString(got)
	if err != nil {
		return false
	}
	m := hmac.New(sha256.New, key)
	m.Write(body)
	return hmac.Equal(mac, m.Sum(nil))
}

// Request is one POST.
type Request struct {
	URL         string
	Body        []byte
	ContentType string            // default application/json
	Header      map[string]string // more headers (the signature's)
}

// Answer is how the receiver answered.
type Answer struct {
	Status int
	Text   string // "409 Conflict": the status line, never the body
}

// OK tells whether the answer is 2xx.
func (a Answer) OK() bool { return a.Status >= 200 && a.Status < 300 }

// Post sends r with client. An error is a request that got no answer (the
// guard's refusal among them, errors.Is netguard.ErrRefused); it names the
// URL's host only, since a webhook URL's path is often its credential.
func Post(ctx context.Context, client *http.Client, r Request) (Answer, error) {
	if client == nil {
		return Answer{}, errors.New("no outbound client is configured")
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.URL, bytes.NewReader(r.Body))
	if err != nil {
		return Answer{}, fmt.Errorf("POST %s: %v", Host(r.URL), unwrapURL(err))
	}
	ct := r.ContentType
	if ct == "" {
		ct = "application/json"
	}
	req.Header.Set("Content-Type", ct)
	req.Header.Set("User-Agent", "imago")
	for k, v := range r.Header {
		req.Header.Set(k, v)
	}
	resp, err := client.Do(req)
	if err != nil {
		return Answer{}, fmt.Errorf("POST %s: %w", Host(r.URL), unwrapURL(err))
	}
	defer resp.Body.Close()
	// The body is read (so the connection can be reused) and dropped: as with
	// analyses, nothing of an answer but its status reaches a message.
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	return Answer{Status: resp.StatusCode, Text: resp.Status}, nil
}

// Host is the scheme and host of a URL, for messages.
func Host(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return "(unparsable URL)"
	}
	return u.Scheme + "://" + u.Host
}

// unwrapURL drops url.Error's text, which quotes the whole URL.
func unwrapURL(err error) error {
	var uerr *url.Error
	if errors.As(err, &uerr) {
		return uerr.Err
	}
	return err
}

// CheckURL reports whether raw is a URL a hook or notification may POST to:
// http or https, with a host, without credentials.
func CheckURL(raw string) error {
	u, err := url.Parse(raw)
	switch {
	case err != nil:
		return fmt.Errorf("is not a URL: %v", unwrapURL(err))
	case u.Scheme != "https" && u.Scheme != "http":
		return fmt.Errorf("%q: want an http:// or https:// URL", Host(raw))
	case u.Host == "":
		return errors.New("has no host")
	case u.User != nil:
		return errors.New("must not hold credentials (user:password@)")
	}
	return nil
}
