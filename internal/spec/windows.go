package spec

import "fmt"

func (r *Rollout) validateWindows(add func(field, format string, args ...any)) {
	for i, w := range r.Windows {
		w.Check(fmt.Sprintf("windows[%d]", i), add)
	}
}
