package ansible

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestFailedTaskReadsTheDefaultCallback(t *testing.T) {
	out := `PLAY [localhost] ****

TASK [motd : write it] ****
changed: [localhost]

TASK [motd : fail when asked to] ****
fatal: [localhost]: FAILED! => {"changed": false, "msg": "boom"}

PLAY RECAP ****
localhost : ok=1 changed=1 unreachable=0 failed=1`
	f, ok := FailedTask(out)
	assert.True(t, ok)
	assert.Equal(t, Failure{Task: "motd : fail when asked to", Fatal: `fatal: [localhost]: FAILED! => {"changed": false, "msg": "boom"}`}, f)
	_, ok = FailedTask("TASK [x] ***\nok: [localhost]\n")
	assert.False(t, ok)
}

func TestCommandQuotesThePlaybookAndVars(t *testing.T) {
	c := Command("/srv/it's/site.yml", map[string]string{"b": "2", "a": "it's"})
	assert.Contains(t, c, `ansible-playbook -c local -i localhost, -e '{"a":"it'\''s","b":"2"}' -e imago_staging_dir="$PWD" '/srv/it'\''s/site.yml'`)
	assert.Equal(t, []string{`"a-b" is not an Ansible variable name (letters, digits and _, not starting with a digit)`, "imago_staging_dir is set by imago (the staging directory)"},
		ExtraVarErrors(map[string]string{"ok": "", "a-b": "", StagingVar: ""}))
}
