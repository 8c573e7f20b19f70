// Package lead is the example server's domain model: the Lead row, its
// statuses and sources, the transitions between statuses, and the View
// clients see. Everything else in the server (API, workflow, scrapers,
// access rules) speaks in these terms.
package lead
