package commands

import (
	"context"
	"errors"
	"fmt"

	"github.com/keyhold/keyhold/authz"
	"github.com/keyhold/keyhold/events"
)

// MaxBindingsPerRequest bounds CreateBindings, so its events fit in one
// atomic batch.
const MaxBindingsPerRequest = 100

// CreateBindings grants several roles at once, each as CreateBinding
// would: all are recorded or none is. The Meta of the items is ignored;
// the command's own counts.
type CreateBindings struct {
	Meta
	Bindings []CreateBinding
}

// BindingsResult is the bindings a command recorded, in request order,
// and the sequence to wait for.
type BindingsResult struct {
	Bindings []*Binding
	Sequence uint64
}

// CreateBindingsHandler handles CreateBindings.
type CreateBindingsHandler struct{ base }

// Handle checks every binding (role, subject, scope-down) before recording
// anything, then records them in one atomic batch. An error names the
// item at fault in its field ("bindings[2].role").
func (h CreateBindingsHandler) Handle(ctx context.Context, cmd CreateBindings) (BindingsResult, error) {
	tenant := cmd.Caller.Tenant
	if err := h.authorize(cmd.Caller, authz.BindingsCreate, authz.TenantScope(tenant)); err != nil {
		return BindingsResult{}, err
	}
	if len(cmd.Bindings) == 0 || len(cmd.Bindings) > MaxBindingsPerRequest {
		return BindingsResult{}, invalid("bindings", "must hold from 1 to %d bindings", MaxBindingsPerRequest)
	}
	scopes := make([]events.Scope, len(cmd.Bindings))
	for i, b := range cmd.Bindings {
		b.Meta = cmd.Meta
		scope, err := h.checkBinding(ctx, b)
		if err != nil {
			return BindingsResult{}, itemError(err, i)
		}
		scopes[i] = scope
	}
	out := make([]*Binding, len(cmd.Bindings))
	seq, err := h.repo.execute(ctx, cmd.Meta, key{}, func(c *change) error {
		for i, b := range cmd.Bindings {
			id := events.NewID()
			out[i] = &Binding{id: id}
			c.record(key{tenant, events.AggregateBinding, id}, out[i], 0, events.BindingCreated{
				Role: b.Role, SubjectKind: b.SubjectKind, SubjectID: b.SubjectID, Scope: scopes[i],
			})
		}
		return nil
	})
	if err != nil {
		return BindingsResult{}, err
	}
	return BindingsResult{Bindings: out, Sequence: seq}, nil
}

// itemError prefixes the field of a command error with the item's index.
func itemError(err error, i int) error {
	var ce *Error
	if !errors.As(err, &ce) {
		return err
	}
	c := *ce
	c.Field = fmt.Sprintf("bindings[%d]", i)
	if ce.Field != "" {
		c.Field += "." + ce.Field
	}
	return &c
}
