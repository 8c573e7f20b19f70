package hub

import (
	"fmt"

	"github.com/go-kit/log/level"
	"github.com/philippseith/signalr"
	"github.com/vmihailenco/msgpack/v5"
)

// LeadUpdatesHub is the hub clients talk to. Its exported methods, apart
// from those promoted from signalr.Hub (which clients cannot call), are the
// wire API: JoinLeadGroup and LeaveLeadGroup.
type LeadUpdatesHub struct {
	signalr.Hub
	srv *Server
}

// JoinLeadGroup adds the caller to Lead_{leadId}, so that it receives that
// lead's updates, if the GroupAuthorizer allows it and the caller is in fewer
// groups than the cap.
func (h *LeadUpdatesHub) JoinLeadGroup(leadID int64) error {
	s := h.srv
	if leadID <= 0 {
		return hubError("leadId must be a positive integer")
	}
	ctx := h.Context()
	p, _ := PrincipalFrom(ctx)
	if a := s.cfg.groupAuth; a != nil {
		ok, err := a.AuthorizeLeadGroup(ctx, p, leadID)
		if err != nil {
			level.Error(s.cfg.logger).Log("msg", "group authorization failed", "connection_id", h.ConnectionID(), "lead_id", leadID, "err", err)
			return hubError(fmt.Sprintf("could not check access to lead %d; try again later", leadID))
		}
		if !ok {
			return hubError(fmt.Sprintf("not authorized to receive updates of lead %d", leadID))
		}
	}
	return s.reg.joinLead(h.ConnectionID(), LeadGroup(leadID), s.cfg.maxLeadGroups)
}

// LeaveLeadGroup removes the caller from Lead_{leadId}; leaving a group it is
// not in is not an error.
func (h *LeadUpdatesHub) LeaveLeadGroup(leadID int64) error {
	if leadID <= 0 {
		return hubError("leadId must be a positive integer")
	}
	h.srv.RemoveFromGroup(LeadGroup(leadID), h.ConnectionID())
	return nil
}

// hubError is an error whose text the client may see, like ASP.NET Core's
// HubException. The engine encodes a method's error result as MessagePack;
// hubError encodes as its text, which the filter turns into the completion's
// error. Any other error reaches the client as a generic message.
type hubError string

func (e hubError) Error() string { return string(e) }

func (e hubError) EncodeMsgpack(enc *msgpack.Encoder) error { return enc.EncodeString(string(e)) }

var _ msgpack.CustomEncoder = hubError("")
