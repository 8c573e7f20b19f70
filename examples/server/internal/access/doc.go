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
// Owners caches lead id → owner so that the notifier's filter, which runs
// once per connection per event inside the hub's delivery, never queries
// the database.
package access
