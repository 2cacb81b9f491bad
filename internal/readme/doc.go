// Package readme holds the test that keeps README.md true: it runs the README's
// quick start and "Try it" commands as written, and make demo, as a new user on a
// fresh machine would (a new HOME, a clean environment, nothing exported).
package readme
