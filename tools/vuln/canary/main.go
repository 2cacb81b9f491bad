// Command canary is never built into anything: check.sh scans it before imago to
// prove the local vulnerability database reports what it must. It calls echo v4.15.4
// (pinned in go.mod), which has known vulnerabilities, so govulncheck has to report
// the ones listed in expect.txt; a database that is empty or broken reports nothing
// and fails the check instead of passing it.
package main

import "github.com/labstack/echo/v4"

func main() {
	e := echo.New()
	e.GET("/", func(c echo.Context) error { return c.String(200, c.RealIP()) })
	_ = e.Start("127.0.0.1:0")
}
