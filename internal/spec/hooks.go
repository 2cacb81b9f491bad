package spec

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/imago/imago/internal/contract"
	"github.com/imago/imago/internal/secretref"
	"github.com/imago/imago/internal/webhook"
)

// Hook defaults.
const (
	DefaultHookInterval = contract.Duration(30 * time.Second) // confirmTrafficIncrease asks again this often
	DefaultHookTimeout  = contract.Duration(time.Hour)        // and holds a weight at most this long
)

func (r *Rollout) hookDefaults() {
	if h := r.Hooks; h != nil {
		if h.Interval == 0 {
			h.Interval = DefaultHookInterval
		}
		if h.Timeout == 0 {
			h.Timeout = DefaultHookTimeout
		}
	}
}

// validateHooks checks hooks and notify.
func (r *Rollout) validateHooks(add func(field, format string, args ...any)) {
	if h := r.Hooks; h != nil {
		named := false
		for _, name := range []string{contract.HookPreRollout, contract.HookConfirmTrafficIncrease, contract.HookPostRollout, contract.HookRollback} {
			if u := h.URL(name); u != "" {
				named = true
				if err := webhook.CheckURL(u); err != nil {
					add("hooks."+name, "%v", err)
				}
			}
		}
		if !named {
			add("hooks", "names no hook: set preRollout, confirmTrafficIncrease, postRollout or rollback (URLs)")
		}
		if h.Secret != "" {
			if err := secretref.Check(h.Secret); err != nil {
				add("hooks.secret", "%v", err)
			}
		}
		if h.Interval <= 0 {
			add("hooks.interval", "must be positive, got %s", h.Interval)
		}
		if h.Timeout < h.Interval {
			add("hooks.timeout", "%s is shorter than hooks.interval %s", h.Timeout, h.Interval)
		}
	}
	for i, t := range r.Notify {
		field := fmt.Sprintf("notify[%d]", i)
		if t.URL == "" {
			add(field+".url", "is required: the incoming webhook's URL")
		} else if err := webhook.CheckURL(t.URL); err != nil {
			add(field+".url", "%v", err)
		}
		if t.Format != "" && !slices.Contains(contract.Formats, t.Format) {
			add(field+".format", "%q: want one of %s", t.Format, strings.Join(contract.Formats, ", "))
		}
		for j, n := range t.On {
			if !slices.Contains(contract.Notices, n) {
				add(fmt.Sprintf("%s.on[%d]", field, j), "%q: want one of %s", n, noticeNames())
			}
		}
	}
}

func noticeNames() string {
	var s []string
	for _, n := range contract.Notices {
		s = append(s, string(n))
	}
	return strings.Join(s, ", ")
}
