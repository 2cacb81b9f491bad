package telemetry

import (
	"context"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/imago/imago/internal/contract"
	"github.com/imago/imago/internal/provider/local"
)

// RouterSource lists the routers whose traffic the worker re-exports, and reads
// each one's per-fleet counters.
type RouterSource interface {
	Routers(ctx context.Context) ([]contract.RouteKey, error)
	FleetMetrics(ctx context.Context, key contract.RouteKey) (map[string]contract.FleetMetrics, error)
}

// LocalRouters are the running routers of a local driver's home.
func LocalRouters(d *local.Driver) RouterSource { return localRouters{d} }

type localRouters struct{ d *local.Driver }

func (l localRouters) Routers(context.Context) ([]contract.RouteKey, error) {
	procs, err := l.d.Processes()
	if err != nil {
		return nil, err
	}
	var keys []contract.RouteKey
	for _, p := range procs {
		if env, svc, ok := strings.Cut(p.Router, "/"); ok {
			keys = append(keys, contract.RouteKey{Service: svc, Environment: env})
		}
	}
	return keys, nil
}

func (l localRouters) FleetMetrics(ctx context.Context, key contract.RouteKey) (map[string]contract.FleetMetrics, error) {
	return l.d.FleetMetrics(ctx, key)
}

// routerCollector scrapes every running router's admin /metrics at scrape time and
// reports its per-fleet counters labelled with the router's service and
// environment. Scraping at scrape time keeps one source of truth (the router's
// own counters) and needs no state in the worker.
type routerCollector struct {
	src     RouterSource
	timeout time.Duration
	log     *slog.Logger

	up, requests, errors, duration *prometheus.Desc
}

func newRouterCollector(src RouterSource, log *slog.Logger) *routerCollector {
	kf := []string{"service", "environment", "fleet"}
	return &routerCollector{
		src: src, timeout: 3 * time.Second, log: log,
		up:       prometheus.NewDesc("imago_router_up", "1 when the router of a service and environment answered the scrape of its admin /metrics, else 0.", []string{"service", "environment"}, nil),
		requests: prometheus.NewDesc("imago_router_requests_total", "Requests the router proxied, by service, environment and fleet (cumulative since the router started).", kf, nil),
		errors:   prometheus.NewDesc("imago_router_errors_total", "Requests answered with a 5xx status, by service, environment and fleet.", kf, nil),
		duration: prometheus.NewDesc("imago_router_request_duration_seconds", "Request latency through the router, by service, environment and fleet.", kf, nil),
	}
}

func (c *routerCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.up
	ch <- c.requests
	ch <- c.errors
	ch <- c.duration
}

func (c *routerCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	keys, err := c.src.Routers(ctx)
	if err != nil {
		c.log.Warn("metrics: list routers", "error", err)
		return
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i].String() < keys[j].String() })
	results := make([]map[string]contract.FleetMetrics, len(keys))
	errs := make([]error, len(keys))
	var wg sync.WaitGroup
	for i, k := range keys {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i], errs[i] = c.src.FleetMetrics(ctx, k)
		}()
	}
	wg.Wait()
	for i, k := range keys {
		up := 1.0
		if errs[i] != nil {
			up = 0
			c.log.Warn("metrics: scrape router", "router", k.String(), "error", errs[i])
		}
		ch <- prometheus.MustNewConstMetric(c.up, prometheus.GaugeValue, up, k.Service, k.Environment)
		fleets := make([]string, 0, len(results[i]))
		for f := range results[i] {
			fleets = append(fleets, f)
		}
		sort.Strings(fleets)
		for _, f := range fleets {
			m := results[i][f]
			lv := []string{k.Service, k.Environment, f}
			ch <- prometheus.MustNewConstMetric(c.requests, prometheus.CounterValue, m.Requests, lv...)
			ch <- prometheus.MustNewConstMetric(c.errors, prometheus.CounterValue, m.Errors, lv...)
			if h, err := constHistogram(c.duration, m.Latency, lv); err == nil {
				ch <- h
			}
		}
	}
}

func constHistogram(desc *prometheus.Desc, h contract.Histogram, lv []string) (prometheus.Metric, error) {
	buckets := make(map[float64]uint64, len(h.Buckets))
	for _, b := range h.Buckets {
		buckets[b.UpperBound] = uint64(b.Count)
	}
	m, err := prometheus.NewConstHistogram(desc, uint64(h.Count), h.Sum, buckets, lv...)
	if err != nil {
		return nil, fmt.Errorf("latency histogram of %v: %w", lv, err)
	}
	return m, nil
}
