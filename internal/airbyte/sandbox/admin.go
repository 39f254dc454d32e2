package sandbox

import (
	"encoding/json"
	"io"
	"net/http"
)

func (s *Server) adminHealthz(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

func (s *Server) adminStats(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, s.Stats())
}

func (s *Server) adminConnectors(w http.ResponseWriter, r *http.Request) {
	name := r.URL.Query().Get("workspace_name")
	if name == "" {
		writeError(w, http.StatusBadRequest, "workspace_name", "missing", "workspace_name is required")
		return
	}
	writeJSON(w, http.StatusOK, s.Connectors(name))
}

func (s *Server) adminPutFaults(w http.ResponseWriter, r *http.Request) {
	b, err := io.ReadAll(io.LimitReader(r.Body, maxBody))
	if err != nil {
		writeError(w, http.StatusBadRequest, "body", "value_error", "cannot read body")
		return
	}
	var f Faults
	if err := json.Unmarshal(b, &f); err != nil {
		writeError(w, http.StatusBadRequest, "body", "value_error", err.Error())
		return
	}
	s.SetFaults(f)
	writeJSON(w, http.StatusOK, f)
}

func (s *Server) adminGetFaults(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, s.faults.Load())
}

func (s *Server) adminReset(w http.ResponseWriter, _ *http.Request) {
	s.Reset()
	w.WriteHeader(http.StatusNoContent)
}
