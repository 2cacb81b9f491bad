// Command imago-bench runs imago's benchmark scenarios (internal/bench), prints
// one table and writes it, with the machine, the Go version and the date, to a
// Markdown file:
//
//	imago-bench -runs 5 -o BENCHMARKS.md
//	imago-bench -only P1,P3
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/imago/imago/internal/bench"
	_ "github.com/imago/imago/internal/pprofdebug" // net/http/pprof in builds tagged imago_pprof
	"github.com/imago/imago/internal/router"
	"github.com/prometheus/procfs"
)

func main() {
	// The local provider starts routers by re-executing this binary.
	router.RunIfChild()

	runs := flag.Int("runs", 5, "runs per figure (at least 5)")
	only := flag.String("only", "", "comma-separated scenario IDs to run (default: all), e.g. P1,P3")
	out := flag.String("o", "", "write the table, with machine, Go version and date, to this Markdown file")
	root := flag.String("root", "", "repository root (default: found from the working directory)")
	bin := flag.String("bin", "", "directory holding imago-worker and packer (default: <root>/bin)")
	list := flag.Bool("list", false, "list the scenarios and exit")
	quiet := flag.Bool("q", false, "do not log progress to stderr")
	flag.Parse()

	if *list {
		for _, s := range bench.Scenarios() {
			fmt.Printf("%s\t%s\n", s.ID, s.Name)
		}
		return
	}
	if *runs < 5 {
		fmt.Fprintf(os.Stderr, "imago-bench: -runs %d: every figure is a median of at least 5 runs\n", *runs)
		os.Exit(2)
	}
	r, err := repoRoot(*root)
	if err != nil {
		fmt.Fprintln(os.Stderr, "imago-bench:", err)
		os.Exit(2)
	}
	if *bin == "" {
		*bin = filepath.Join(r, "bin")
	}
	if abs, err := filepath.Abs(*bin); err == nil {
		*bin = abs
	}
	env := &bench.Env{Root: r, Bin: *bin, Runs: *runs, Logf: func(format string, args ...any) {
		if !*quiet {
			fmt.Fprintf(os.Stderr, "%s "+format+"\n", append([]any{time.Now().Format("15:04:05")}, args...)...)
		}
	}}
	defer env.Cleanup()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var ids []string
	if *only != "" {
		ids = strings.Split(*only, ",")
	}
	started := time.Now()
	results := bench.RunAll(ctx, env, ids)
	table := bench.Table(bench.Rows(results))
	fmt.Print(table)

	if *out != "" {
		doc := report(r, table, results, started, *runs)
		if err := os.WriteFile(*out, []byte(doc), 0o644); err != nil {
			fmt.Fprintln(os.Stderr, "imago-bench:", err)
			os.Exit(1)
		}
		fmt.Fprintf(os.Stderr, "wrote %s\n", *out)
	}
}

// repoRoot is dir, or the nearest directory up from the working directory
// holding imago's go.mod.
func repoRoot(dir string) (string, error) {
	if dir != "" {
		return filepath.Abs(dir)
	}
	wd, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for d := wd; ; d = filepath.Dir(d) {
		if data, err := os.ReadFile(filepath.Join(d, "go.mod")); err == nil && strings.Contains(string(data), "module github.com/imago/imago\n") {
			return d, nil
		}
		if filepath.Dir(d) == d {
			return "", fmt.Errorf("no imago repository (go.mod of github.com/imago/imago) at or above %s; pass -root", wd)
		}
	}
}

func report(root, table string, results []bench.Result, started time.Time, runs int) string {
	var b strings.Builder
	b.WriteString("# imago benchmarks\n\n")
	b.WriteString("Produced by `make bench` (" + command() + "). Every figure is a median (or the stated percentile) of at least " +
		fmt.Sprint(runs) + " runs; every ratio compares two measurements taken in the same run.\n\n")
	fmt.Fprintf(&b, "- Date: %s\n", started.UTC().Format("2006-01-02 15:04 UTC"))
	fmt.Fprintf(&b, "- Machine: %s\n", machine())
	fmt.Fprintf(&b, "- Go: %s\n", goVersion(root))
	var total time.Duration
	for _, r := range results {
		total += r.Elapsed
	}
	fmt.Fprintf(&b, "- Duration: %s\n\n", total.Round(time.Second))
	b.WriteString(table)
	b.WriteString("\n")
	return b.String()
}

func command() string {
	args := append([]string{filepath.Base(os.Args[0])}, os.Args[1:]...)
	return "`" + strings.Join(args, " ") + "`"
}

func goVersion(root string) string {
	cmd := exec.Command("go", "version")
	cmd.Dir = root
	out, err := cmd.Output()
	if err != nil {
		return runtime.Version() + " (built with)"
	}
	return strings.TrimSpace(string(out))
}

// machine describes the CPU model, the number of CPUs and the memory, from /proc.
func machine() string {
	model, mem := "", ""
	if fs, err := procfs.NewDefaultFS(); err == nil {
		if cpus, err := fs.CPUInfo(); err == nil && len(cpus) > 0 {
			model = strings.TrimSpace(cpus[0].ModelName)
		}
		if mi, err := fs.Meminfo(); err == nil && mi.MemTotal != nil {
			mem = fmt.Sprintf(", %.1f GiB memory", float64(*mi.MemTotal)/(1<<20))
		}
	}
	if model == "" {
		model = runtime.GOARCH
	}
	return fmt.Sprintf("%s, %d CPUs (nproc)%s, %s/%s", model, runtime.NumCPU(), mem, runtime.GOOS, runtime.GOARCH)
}
