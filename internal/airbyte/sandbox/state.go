package sandbox

import (
	"errors"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
)

// deleteListLag is how many list calls of its workspace still show a deleted connector: Airbyte
// deletes asynchronously, and clients must not take a listing as the final word.
const deleteListLag = 1

// store is everything the sandbox remembers. Reset swaps in a fresh one.
type store struct {
	mu     sync.RWMutex // guards the maps below; never held across I/O or sleeps
	byName map[string]*workspace
	byID   map[string]*workspace
	// sources indexes every connector/source by id, for the /{id} routes.
	sources sync.Map // id -> *source
}

func newStore() *store {
	return &store{byName: map[string]*workspace{}, byID: map[string]*workspace{}}
}

// workspace is one customer's Airbyte workspace, with its own lock so that customers never
// contend with each other.
type workspace struct {
	id        string
	regionID  string // where it was created; Airbyte's default (US) when the mint named none
	createdAt time.Time

	mu        sync.Mutex
	name      string    // changes only through store.updateWorkspace, under st.mu and mu
	status    string    // workspaceActive or workspaceInactive
	updatedAt time.Time // last PUT
	sources   []*source // in creation order; deleted ones linger for deleteListLag lists
	gone      bool      // deleted by DELETE /workspaces/{id}: nothing may be added any more
}

// Workspace statuses (the spec's WorkspaceStatus).
const (
	workspaceActive   = "active"
	workspaceInactive = "inactive"
)

// workspaceMeta is a consistent copy of a workspace's mutable fields.
type workspaceMeta struct {
	name, status string
	updatedAt    time.Time
}

func (ws *workspace) meta() workspaceMeta {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	return workspaceMeta{name: ws.name, status: ws.status, updatedAt: ws.updatedAt}
}

// nameNow is the workspace's current name.
func (ws *workspace) nameNow() string { return ws.meta().name }

// source is a connector (Agent Engine) or a source (Embedded): the same thing in Airbyte.
type source struct {
	id        string
	ws        *workspace
	entry     *catalogEntry
	createdAt time.Time

	// guarded by ws.mu
	name        string
	config      map[string]any // non-secret settings: replication_config or source_config minus secrets
	credentials map[string]any // the secret part, never returned unredacted
	entities    []requestedEntity
	updatedAt   time.Time
	deleted     bool
	listsLeft   int // list calls that still show it after a delete
}

func (st *store) workspaceByID(id string) *workspace {
	st.mu.RLock()
	defer st.mu.RUnlock()
	return st.byID[strings.ToLower(id)]
}

func (st *store) workspaceByName(name string) *workspace {
	st.mu.RLock()
	defer st.mu.RUnlock()
	return st.byName[name]
}

// ensureWorkspace returns the workspace with this exact name, creating it once, whatever the
// number of concurrent callers.
func (st *store) ensureWorkspace(name, regionID string, now time.Time) *workspace {
	if ws := st.workspaceByName(name); ws != nil {
		return ws
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	if ws, ok := st.byName[name]; ok {
		return ws
	}
	if regionID == "" {
		regionID = RegionUS
	}
	ws := &workspace{id: uuid.NewString(), name: name, status: workspaceActive, regionID: strings.ToLower(regionID),
		createdAt: now, updatedAt: now}
	st.byName[name] = ws
	st.byID[ws.id] = ws
	return ws
}

func (st *store) workspaces() []*workspace {
	st.mu.RLock()
	out := slices.Collect(maps.Values(st.byID))
	st.mu.RUnlock()
	slices.SortFunc(out, func(a, b *workspace) int {
		if c := a.createdAt.Compare(b.createdAt); c != 0 {
			return c
		}
		return strings.Compare(a.id, b.id)
	})
	return out
}

// errNameTaken is updateWorkspace's answer to a rename onto another workspace's name.
var errNameTaken = errors.New("another workspace has this name")

// updateWorkspace applies a PUT /workspaces/{id}: a new name (nil keeps it) and status ("" keeps
// it). A rename takes st.mu so that the name index never disagrees with the workspace.
func (st *store) updateWorkspace(ws *workspace, name *string, status string, now time.Time) error {
	st.mu.Lock()
	defer st.mu.Unlock()
	ws.mu.Lock()
	defer ws.mu.Unlock()
	if name != nil && *name != ws.name {
		if _, taken := st.byName[*name]; taken {
			return errNameTaken
		}
		delete(st.byName, ws.name)
		st.byName[*name] = ws
		ws.name = *name
	}
	if status != "" {
		ws.status = status
	}
	ws.updatedAt = now
	return nil
}

// deleteWorkspace forgets ws and its connectors at once; it returns how many live connectors
// went with it, and false when ws was already gone.
func (st *store) deleteWorkspace(ws *workspace) (int, bool) {
	st.mu.Lock()
	if st.byID[ws.id] != ws {
		st.mu.Unlock()
		return 0, false
	}
	delete(st.byID, ws.id)
	ws.mu.Lock()
	delete(st.byName, ws.name)
	st.mu.Unlock()
	defer ws.mu.Unlock()
	live := 0
	for _, src := range ws.sources {
		if !src.deleted {
			live++
			src.deleted = true
			st.sources.Delete(src.id)
		}
	}
	ws.sources = nil
	ws.gone = true
	return live, true
}

// add stores src in ws; it reports false when ws was deleted meanwhile.
func (st *store) add(ws *workspace, src *source) bool {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	if ws.gone {
		return false
	}
	ws.sources = append(ws.sources, src)
	st.sources.Store(src.id, src)
	return true
}

// lookup returns a live source by id.
func (st *store) lookup(id string) *source {
	v, ok := st.sources.Load(strings.ToLower(id))
	if !ok {
		return nil
	}
	src := v.(*source)
	src.ws.mu.Lock()
	defer src.ws.mu.Unlock()
	if src.deleted {
		return nil
	}
	return src
}

// markDeleted deletes src; it stays listed for deleteListLag list calls. It reports false when
// src was already deleted.
func (st *store) markDeleted(src *source) bool {
	src.ws.mu.Lock()
	defer src.ws.mu.Unlock()
	if src.deleted {
		return false
	}
	src.deleted = true
	src.listsLeft = deleteListLag
	st.sources.Delete(src.id)
	return true
}

// removeNow deletes src synchronously (the embedded API's delete).
func (st *store) removeNow(src *source) bool {
	src.ws.mu.Lock()
	defer src.ws.mu.Unlock()
	if src.deleted {
		return false
	}
	src.deleted = true
	src.ws.sources = slices.DeleteFunc(src.ws.sources, func(x *source) bool { return x == src })
	st.sources.Delete(src.id)
	return true
}

// sourceView is a consistent copy of a source, taken under its workspace lock.
type sourceView struct {
	id, name    string
	entry       *catalogEntry
	config      map[string]any
	credentials map[string]any
	entities    []requestedEntity
	createdAt   time.Time
	updatedAt   time.Time
}

func (src *source) viewLocked() sourceView {
	return sourceView{
		id: src.id, name: src.name, entry: src.entry,
		config: maps.Clone(src.config), credentials: maps.Clone(src.credentials),
		entities:  slices.Clone(src.entities),
		createdAt: src.createdAt, updatedAt: src.updatedAt,
	}
}

func (src *source) view() sourceView {
	src.ws.mu.Lock()
	defer src.ws.mu.Unlock()
	return src.viewLocked()
}

// list returns the workspace's sources as a list call sees them, and ages deleted ones.
func (ws *workspace) list(definitionID string) []sourceView {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	out := make([]sourceView, 0, len(ws.sources))
	kept := ws.sources[:0]
	for _, src := range ws.sources {
		if src.deleted {
			if src.listsLeft <= 0 {
				continue
			}
			src.listsLeft--
		}
		kept = append(kept, src)
		if definitionID == "" || strings.EqualFold(src.entry.definitionID, definitionID) {
			out = append(out, src.viewLocked())
		}
	}
	clear(ws.sources[len(kept):])
	ws.sources = kept
	return out
}

// live returns a copy of the sources not deleted, without ageing anything.
func (ws *workspace) live() []sourceView {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	out := make([]sourceView, 0, len(ws.sources))
	for _, src := range ws.sources {
		if !src.deleted {
			out = append(out, src.viewLocked())
		}
	}
	return out
}
