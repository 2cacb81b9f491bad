// Package ansible runs an Ansible playbook as a provision step of an imago-local
// bake (provision: [{ansible: site.yml, extraVars: {...}}]) and reads which task
// failed from ansible-playbook's output.
//
// The step is a shell command the builder runs like any other provision command:
// in the staging directory, with the bake's clean environment (its variables and
// passEnv names, nothing else of the worker's), as the bake user. It runs
//
//	ansible-playbook -c local -i localhost, -e '{extraVars as JSON}' -e imago_staging_dir="$PWD" PLAYBOOK
//
// with Ansible's home and temporary directories in a fresh directory removed
// afterwards (nothing lands in the user's home or the image), colours and retry
// files off. The playbook writes into the image under {{ imago_staging_dir }}.
package ansible

import (
	"encoding/json"
	"fmt"
	"regexp"
	"sort"
	"strings"
)

// Program is the command the step runs (Debian's ansible package; scripts/system-deps.sh).
const Program = "ansible-playbook"

// StagingVar is the extra variable that holds the staging directory's path.
const StagingVar = "imago_staging_dir"

// Command is the shell command that runs playbook (an absolute path) with
// extraVars. Written by hand rather than with a shell-quoting library: the only
// quoting needed is POSIX single quotes around three words.
func Command(playbook string, extraVars map[string]string) string {
	vars := extraVars
	if vars == nil {
		vars = map[string]string{}
	}
	js, _ := json.Marshal(vars) // map keys sorted: the same step is the same command
	return `t=$(mktemp -d) && trap 'rm -rf "$t"' EXIT && ` +
		`ANSIBLE_HOME="$t" ANSIBLE_LOCAL_TEMP="$t/tmp" ANSIBLE_REMOTE_TEMP="$t/tmp" ANSIBLE_NOCOLOR=1 ANSIBLE_FORCE_COLOR=0 ANSIBLE_RETRY_FILES_ENABLED=0 ` +
		Program + ` -c local -i localhost, -e ` + quote(string(js)) + ` -e ` + StagingVar + `="$PWD" ` + quote(playbook)
}

// quote is s in POSIX single quotes.
func quote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// ExtraVarErrors names the extra variables Ansible would not accept as names
// (and the one imago sets itself).
func ExtraVarErrors(extraVars map[string]string) []string {
	var bad []string
	for k := range extraVars {
		switch {
		case !varNameRE.MatchString(k):
			bad = append(bad, fmt.Sprintf("%q is not an Ansible variable name (letters, digits and _, not starting with a digit)", k))
		case k == StagingVar:
			bad = append(bad, fmt.Sprintf("%s is set by imago (the staging directory)", k))
		}
	}
	sort.Strings(bad)
	return bad
}

var varNameRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// Failure is the task a playbook stopped at, as the default callback printed it.
type Failure struct {
	Task  string // the task's name, as in "TASK [name]"
	Fatal string // the line "fatal: [localhost]: FAILED! => {...}"
}

var (
	taskRE  = regexp.MustCompile(`^TASK \[(.*)\] \**$`)
	fatalRE = regexp.MustCompile(`^(fatal|failed): \[[^\]]*\]`)
)

// FailedTask finds the first failed task in ansible-playbook's output (the
// default callback's "TASK [name] ***" and "fatal: [host]: FAILED! => ..."
// lines); ok is false when the output shows none.
func FailedTask(output string) (f Failure, ok bool) {
	task := ""
	for _, l := range strings.Split(output, "\n") {
		l = strings.TrimSpace(l)
		if m := taskRE.FindStringSubmatch(l); m != nil {
			task = m[1]
			continue
		}
		if fatalRE.MatchString(l) && task != "" {
			return Failure{Task: task, Fatal: l}, true
		}
	}
	return Failure{}, false
}
