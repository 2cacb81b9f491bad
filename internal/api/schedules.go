package api

import (
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/imago/imago/internal/contract"
	"github.com/imago/imago/internal/schedules"
)

// ScheduleList answers GET /v1/schedules.
type ScheduleList struct {
	Schedules []schedules.Schedule `json:"schedules"`
}

// ScheduleChanged answers pause, unpause, trigger and backfill.
type ScheduleChanged struct {
	Name   string        `json:"name"`
	Action string        `json:"action"` // pause, unpause, trigger, backfill
	Note   string        `json:"note,omitempty"`
	From   *time.Time    `json:"from,omitempty"` // backfill
	To     *time.Time    `json:"to,omitempty"`
	By     string        `json:"by"`
	Links  ScheduleLinks `json:"links"`
}

// ScheduleLinks are where to see a schedule and the pipeline runs it starts.
type ScheduleLinks struct {
	Self     string `json:"self"`
	Pipeline string `json:"pipeline"` // the latest run, by hand or by the schedule
}

func scheduleLinks(name string) ScheduleLinks {
	return ScheduleLinks{Self: "/v1/schedules/" + name, Pipeline: "/v1/pipelines/" + name}
}

// pathName reads {name}, a schedule's or a pipeline's, from the path.
func pathName(r *http.Request) (string, error) {
	name := r.PathValue("name")
	if !nameRE.MatchString(name) {
		return "", contract.FieldErrors{{Field: "path.name", Msg: fmt.Sprintf("%q must be 1-40 lowercase letters, digits or '-'", name)}}
	}
	return name, nil
}

// scheduleError words the schedules package's refusals for the API: the CLI's
// hints name commands, these name endpoints.
func scheduleError(err error) error {
	var nf *schedules.NotFoundError
	var ex *schedules.ExistsError
	switch {
	case errors.As(err, &nf):
		return notFoundf("no schedule %q; list them with GET /v1/schedules", nf.Name)
	case errors.As(err, &ex):
		return problem(http.StatusConflict, "exists", "Already exists",
			"schedule %q already exists; see it with GET /v1/schedules/%s, or delete it first with DELETE /v1/schedules/%s", ex.Name, ex.Name, ex.Name)
	}
	return err
}

// createSchedule is POST /v1/schedules, as `imago schedule create`: 201 with the
// schedule as describe shows it (its next runs).
func (s *Server) createSchedule(w http.ResponseWriter, r *http.Request) error {
	o, err := DecodeCreateSchedule(r.Body, s.cfg.BakeRoots)
	if err != nil {
		return err
	}
	o.StartedBy = principal(r)
	ctx := r.Context()
	if err := schedules.Create(ctx, s.cfg.Client, o); err != nil {
		return scheduleError(err)
	}
	sch, err := schedules.Describe(ctx, s.cfg.Client, o.Name)
	if err != nil {
		return scheduleError(err)
	}
	w.Header().Set("Location", "/v1/schedules/"+o.Name)
	return writeJSON(w, http.StatusCreated, sch)
}

// listSchedules is GET /v1/schedules: imago's schedules by name, as `imago
// schedule list -o json`.
func (s *Server) listSchedules(w http.ResponseWriter, r *http.Request) error {
	list, err := schedules.List(r.Context(), s.cfg.Client)
	if err != nil {
		return err
	}
	if list == nil {
		list = []schedules.Schedule{}
	}
	return writeJSON(w, http.StatusOK, ScheduleList{Schedules: list})
}

// getSchedule is GET /v1/schedules/{name}, as `imago schedule describe -o json`:
// next runs, and recent runs newest first with their outcome.
func (s *Server) getSchedule(w http.ResponseWriter, r *http.Request) error {
	name, err := pathName(r)
	if err != nil {
		return err
	}
	sch, err := schedules.Describe(r.Context(), s.cfg.Client, name)
	if err != nil {
		return scheduleError(err)
	}
	return writeJSON(w, http.StatusOK, sch)
}

// pauseSchedule is POST /v1/schedules/{name}/pause or unpause, as `imago schedule
// pause|unpause`; without a note the note says who did it.
func (s *Server) pauseSchedule(pause bool) func(w http.ResponseWriter, r *http.Request) error {
	verb := "unpause"
	if pause {
		verb = "pause"
	}
	return func(w http.ResponseWriter, r *http.Request) error {
		name, err := pathName(r)
		if err != nil {
			return err
		}
		req, err := DecodeScheduleNote(r.Body)
		if err != nil {
			return err
		}
		by := principal(r)
		note := req.Note
		if note == "" {
			note = verb + "d by " + by
		}
		if pause {
			err = schedules.Pause(r.Context(), s.cfg.Client, name, note)
		} else {
			err = schedules.Unpause(r.Context(), s.cfg.Client, name, note)
		}
		if err != nil {
			return scheduleError(err)
		}
		return writeJSON(w, http.StatusOK, ScheduleChanged{Name: name, Action: verb, Note: note, By: by, Links: scheduleLinks(name)})
	}
}

// triggerSchedule is POST /v1/schedules/{name}/trigger, as `imago schedule
// trigger`: the schedule starts its pipeline now, under its overlap policy (202;
// follow the run at links.pipeline).
func (s *Server) triggerSchedule(w http.ResponseWriter, r *http.Request) error {
	name, err := pathName(r)
	if err != nil {
		return err
	}
	if err := schedules.Trigger(r.Context(), s.cfg.Client, name); err != nil {
		return scheduleError(err)
	}
	return writeJSON(w, http.StatusAccepted, ScheduleChanged{Name: name, Action: "trigger", By: principal(r), Links: scheduleLinks(name)})
}

// backfillSchedule is POST /v1/schedules/{name}/backfill, as `imago schedule
// backfill`: the ticks between from and to run, under the overlap policy (202).
func (s *Server) backfillSchedule(w http.ResponseWriter, r *http.Request) error {
	name, err := pathName(r)
	if err != nil {
		return err
	}
	from, to, err := DecodeBackfill(r.Body)
	if err != nil {
		return err
	}
	if err := schedules.Backfill(r.Context(), s.cfg.Client, name, from, to); err != nil {
		return scheduleError(err)
	}
	return writeJSON(w, http.StatusAccepted, ScheduleChanged{Name: name, Action: "backfill", From: &from, To: &to, By: principal(r), Links: scheduleLinks(name)})
}

// deleteSchedule is DELETE /v1/schedules/{name}, as `imago schedule delete`:
// 204; runs it started go on.
func (s *Server) deleteSchedule(w http.ResponseWriter, r *http.Request) error {
	name, err := pathName(r)
	if err != nil {
		return err
	}
	if err := schedules.Delete(r.Context(), s.cfg.Client, name); err != nil {
		return scheduleError(err)
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
