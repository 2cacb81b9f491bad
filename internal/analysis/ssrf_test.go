package analysis

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/imago/imago/internal/contract"
	"github.com/imago/imago/internal/netguard"
)

// The SSRF suite: an analysis URL is a user's input, and must not reach cloud
// metadata, the worker's own host or private networks (unless the operator
// allows them), follow a redirect there, or carry an answer's content back in a
// rollout's messages. Each case runs a whole analysis (Run), as RunAnalysis does.

func runAnalysis(t *testing.T, spec contract.AnalysisSpec, env Env) (Result, error) {
	t.Helper()
	spec.Interval, spec.Count = time.Second, 2
	m, err := NewMeasurer(spec, env)
	if err != nil {
		t.Fatal(err)
	}
	return newClock().runner().Run(context.Background(), spec, m, nil)
}

func TestAnalysisAtTheMetadataAddressIsRefused(t *testing.T) {
	for _, spec := range []contract.AnalysisSpec{
		{Provider: ProviderHTTP, URL: "http://169.254.169.254/latest/meta-data/iam/security-credentials/", Max: f64(1)},
		{Provider: ProviderPrometheus, Address: "http://169.254.169.254", Query: "up", Max: f64(1)},
		{Provider: ProviderHTTP, URL: "http://[fd00:ec2::254]/latest/meta-data/", Max: f64(1)},
	} {
		// Not even an operator's allow-everything list opens it.
		for _, env := range []Env{{}, {HTTP: netguard.New(netguard.MustParseAllow("0.0.0.0/0, ::/0")).Client(0)}} {
			res, err := runAnalysis(t, spec, env)
			if !IsPermanent(err) || !strings.Contains(err.Error(), "refused by imago's outbound guard") ||
				!strings.Contains(err.Error(), "never allowed") || len(res.Measurements) != 0 {
				t.Errorf("%s%s: %+v, %v; want a permanent refusal before any measurement", spec.URL, spec.Address, res, err)
			}
		}
	}
}

// countingListener counts the connections it accepted.
type countingListener struct {
	net.Listener
	n atomic.Int64
}

func (l *countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.n.Add(1)
	}
	return c, err
}

// server starts an httptest server on loopback counting its connections.
func server(t *testing.T, h http.HandlerFunc) (*httptest.Server, *countingListener) {
	t.Helper()
	srv := httptest.NewUnstartedServer(h)
	cl := &countingListener{Listener: srv.Listener}
	srv.Listener = cl
	srv.Start()
	t.Cleanup(srv.Close)
	return srv, cl
}

func TestAnalysisAtLoopbackNeedsTheOperatorsAllow(t *testing.T) {
	srv, conns := server(t, func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, `{"errorRate":0.01}`) })
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	for _, url := range []string{srv.URL + "/stats", "http://localhost:" + port + "/stats"} {
		spec := contract.AnalysisSpec{Provider: ProviderHTTP, URL: url, Field: "errorRate", Max: f64(0.05)}
		_, err := runAnalysis(t, spec, Env{})
		if !IsPermanent(err) || !strings.Contains(err.Error(), "127.0.0.1 is loopback; an operator can allow it with IMAGO_ANALYSIS_ALLOW=127.0.0.1") {
			t.Errorf("%s without allow: %v", url, err)
		}
	}
	if n := conns.n.Load(); n != 0 {
		t.Fatalf("the refused analyses opened %d connections to the server", n)
	}
	for _, allow := range []string{"127.0.0.1", "127.0.0.0/8", "localhost"} {
		env := Env{HTTP: netguard.New(netguard.MustParseAllow(allow)).Client(0)}
		spec := contract.AnalysisSpec{Provider: ProviderHTTP, URL: "http://localhost:" + port + "/stats", Field: "errorRate", Max: f64(0.05)}
		res, err := runAnalysis(t, spec, env)
		if err != nil || res.Phase != PhaseSuccessful {
			t.Errorf("allowed by %s: %+v, %v", allow, res, err)
		}
	}
}

func TestAnalysisFollowsNoRedirect(t *testing.T) {
	target, targetConns := server(t, func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, `{"errorRate":0}`) })
	redirect, _ := server(t, func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, target.URL+"/stats", http.StatusFound)
	})
	env := Env{HTTP: netguard.New(netguard.MustParseAllow("127.0.0.1")).Client(0)}
	for _, spec := range []contract.AnalysisSpec{
		{Provider: ProviderHTTP, URL: redirect.URL + "/stats", Field: "errorRate", Max: f64(0.05)},
		{Provider: ProviderPrometheus, Address: redirect.URL, Query: "up", Max: f64(0.05)},
	} {
		res, err := runAnalysis(t, spec, env)
		if err != nil || res.Phase != PhaseFailed || res.Reason != ReasonCouldNotMeasure ||
			!strings.Contains(res.Message, "answered 302 Found") || !strings.Contains(res.Message, "(redirects are not followed: give the final URL)") {
			t.Errorf("redirect: %+v, %v", res, err)
		}
	}
	if n := targetConns.n.Load(); n != 0 {
		t.Fatalf("the redirect's target got %d connections", n)
	}
}

func TestAnalysisNeverRepeatsTheAnswer(t *testing.T) {
	const secret = "AKIAIOSFODNN7EXAMPLE/wJalrXUtnFEMI"
	srv, _ := server(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/500":
			http.Error(w, "internal error, key="+secret, http.StatusInternalServerError)
		case "/config":
			fmt.Fprintf(w, `{"key":%q}`, secret)
		case "/api/v1/query":
			w.WriteHeader(http.StatusBadRequest)
			fmt.Fprintf(w, `{"status":"error","errorType":%q,"error":%q}`, secret, secret)
		default:
			fmt.Fprint(w, "<html>"+secret+"</html>")
		}
	})
	env := Env{HTTP: netguard.New(netguard.MustParseAllow("127.0.0.1")).Client(0)}
	for _, tc := range []struct {
		spec contract.AnalysisSpec
		want string
	}{
		{contract.AnalysisSpec{Provider: ProviderHTTP, URL: srv.URL + "/500", Max: f64(1)}, "answered 500 Internal Server Error, 55 bytes"},
		{contract.AnalysisSpec{Provider: ProviderHTTP, URL: srv.URL + "/config", Field: "key", Max: f64(1)}, "field key is a string of 34 bytes, not a number"},
		{contract.AnalysisSpec{Provider: ProviderHTTP, URL: srv.URL + "/page", Max: f64(1)}, "the answer (200 OK, 47 bytes) is not JSON"},
		{contract.AnalysisSpec{Provider: ProviderPrometheus, Address: srv.URL, Query: "up", Max: f64(1)}, "refused the query: 400 Bad Request, 112 bytes, no errorType"},
		{contract.AnalysisSpec{Provider: ProviderPrometheus, Address: srv.URL + "/500#", Query: "up", Max: f64(1)}, "not a Prometheus API answer"},
	} {
		res, err := runAnalysis(t, tc.spec, env)
		if err != nil || res.Reason != ReasonCouldNotMeasure || !strings.Contains(res.Message, tc.want) || strings.Contains(res.Message, "AKIA") {
			t.Errorf("%s%s: %q, %v; want %q and no byte of the secret", tc.spec.URL, tc.spec.Address, res.Message, err, tc.want)
		}
		for _, m := range res.Measurements {
			if strings.Contains(m.Message, "AKIA") {
				t.Errorf("a measurement repeats the secret: %q", m.Message)
			}
		}
	}
}
