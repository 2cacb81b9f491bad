package local

import "github.com/imago/imago/internal/provider"

// WithEnv returns c with its Home and Images taken from env where c leaves
// them unset: what the local opener, and those of the drivers built on the
// local driver (qemu, libvirt), do with the worker's OpenEnv.
func (c Config) WithEnv(env provider.OpenEnv) Config {
	if c.Home == "" {
		c.Home = env.Home
	}
	if c.Images == nil && env.Images != nil {
		c.Images = env.Images
	}
	return c
}

// LogTail returns the lines of the last limit bytes of the log at path (the
// first one may be cut), nil when it cannot be read or is empty: what
// Describe shows of an exited instance, for drivers whose instances log to a
// file the worker can read (libvirt's console log on the worker's host).
func LogTail(path string, limit int64) []string { return logTail(path, limit) }
