// Package access holds the example server's authorization rules, shared by
// the REST API, the hub's group authorizer and the notifier's per-user
// filter:
//
//   - an admin sees every lead and may join any Lead_{id} group;
//   - a salesperson (role sales) sees only the leads whose owner is their
//     user id (the token's sub), on the LeadUpdates group and through the
//     API, and may join only those leads' groups;
//   - any other token sees nothing.
//
// Who sees an event is decided from the owner the event's write committed
// (the interceptor returns it with the change, the workflow reads it in its
// write's transaction): there is no owner cache, which another instance's
// reassignment could make stale.
package access
