package workflows

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestBudgetStepsOfWholeRollouts(t *testing.T) {
	for _, tc := range []struct {
		name string
		b    budget
		old  int
		want []budgetStep
	}{
		{"maxSurge 1, maxUnavailable 0: one at a time, old shrinks behind", budget{size: 4, surge: 1, wave: 1}, 4, []budgetStep{
			{OldBefore: 4, New: 1, OldAfter: 3, WeightBefore: 0, Weight: 25},
			{OldBefore: 3, New: 2, OldAfter: 2, WeightBefore: 25, Weight: 50},
			{OldBefore: 2, New: 3, OldAfter: 1, WeightBefore: 50, Weight: 75},
			{OldBefore: 1, New: 4, OldAfter: 1, WeightBefore: 75, Weight: 100},
		}},
		{"waves 50% but maxSurge 1: the surge caps the wave", budget{size: 4, surge: 1, wave: 2}, 4, []budgetStep{
			{OldBefore: 4, New: 1, OldAfter: 3, WeightBefore: 0, Weight: 25},
			{OldBefore: 3, New: 2, OldAfter: 2, WeightBefore: 25, Weight: 50},
			{OldBefore: 2, New: 3, OldAfter: 1, WeightBefore: 50, Weight: 75},
			{OldBefore: 1, New: 4, OldAfter: 1, WeightBefore: 75, Weight: 100},
		}},
		{"maxSurge 1, maxUnavailable 1: the old fleet shrinks first", budget{size: 4, surge: 1, unavailable: 1, wave: 2}, 4, []budgetStep{
			{OldBefore: 3, New: 2, OldAfter: 2, WeightBefore: 0, Weight: 50},
			{OldBefore: 1, New: 4, OldAfter: 1, WeightBefore: 66, Weight: 100},
		}},
		{"a surge of a whole wave (the default) is today's rolling", budget{size: 3, surge: 1, wave: 1}, 3, []budgetStep{
			{OldBefore: 3, New: 1, OldAfter: 2, WeightBefore: 0, Weight: 33},
			{OldBefore: 2, New: 2, OldAfter: 1, WeightBefore: 33, Weight: 66},
			{OldBefore: 1, New: 3, OldAfter: 1, WeightBefore: 66, Weight: 100},
		}},
		{"an old fleet larger than the budget shrinks to make room", budget{size: 2, surge: 1, unavailable: 0, wave: 1}, 5, []budgetStep{
			{OldBefore: 2, New: 1, OldAfter: 1, WeightBefore: 0, Weight: 50},
			{OldBefore: 1, New: 2, OldAfter: 1, WeightBefore: 50, Weight: 100},
		}},
		{"no old fleet: waves as they come", budget{size: 3, surge: 1, wave: 2}, 0, []budgetStep{
			{OldBefore: 0, New: 2, OldAfter: 0, WeightBefore: 0, Weight: 100},
			{OldBefore: 0, New: 3, OldAfter: 0, WeightBefore: 100, Weight: 100},
		}},
	} {
		assert.Equal(t, tc.want, tc.b.steps(tc.old), tc.name)
	}
}

// Whatever the budget, no step runs more than size+surge instances nor serves
// from fewer than size−unavailable, every step adds a new instance, the old
// fleet keeps one until the end, and the last step gives the new fleet 100%.
func TestBudgetStepsKeepTheBudget(t *testing.T) {
	for size := 1; size <= 12; size++ {
		for surge := 1; surge <= size+1; surge++ {
			for unavailable := 0; unavailable < size; unavailable++ {
				for wave := 1; wave <= size; wave++ {
					b := budget{size: size, surge: surge, unavailable: unavailable, wave: wave}
					name := fmt.Sprintf("%+v", b)
					newN, oldN := 0, size
					steps := b.steps(oldN)
					if !assert.NotEmpty(t, steps, name) {
						return
					}
					for _, st := range steps {
						assert.Greater(t, st.New, newN, name)
						assert.LessOrEqual(t, st.OldBefore, oldN, name)
						assert.GreaterOrEqual(t, newN+st.OldBefore, size-unavailable, "%s: serving while the old fleet shrinks first", name)
						assert.LessOrEqual(t, st.New+st.OldBefore, size+surge, "%s: running while the new instances start", name)
						assert.GreaterOrEqual(t, st.New+st.OldAfter, size-unavailable, "%s: serving after the step", name)
						assert.GreaterOrEqual(t, st.OldAfter, 1, "%s: the old fleet stays warm", name)
						assert.LessOrEqual(t, st.New-newN, wave, "%s: at most a wave", name)
						newN, oldN = st.New, st.OldAfter
					}
					last := steps[len(steps)-1]
					assert.Equal(t, size, last.New, name)
					assert.Equal(t, 100, last.Weight, name)
				}
			}
		}
	}
}
