// Package shred is a golden case: events with fields tagged pii
// (crypto-shredding), of plain and named string types, beside an event
// without any, and an upcast from an older sealed form.
package shred

// Member is a club member.
//
//cqrs:aggregate name=club.member snapshot=2
type Member struct {
	Email string
	Name  Name
	Plan  string
}

// Name is a member's name.
type Name string

// UserID identifies a person: the subject of their personal data.
type UserID string

// Joined starts a membership.
//
//cqrs:event Member name=club.member.joined version=2
type Joined struct {
	User  UserID
	Email string `cqrs:"pii=User"`
	Name  Name   `msgpack:"name" cqrs:"pii=User"`
	Plan  string
}

// JoinedV1 is how Joined was stored at version 1, before it had a plan.
type JoinedV1 struct {
	User  UserID
	Email string `cqrs:"pii=User"`
	Name  Name   `msgpack:"name" cqrs:"pii=User"`
}

//cqrs:upcast
func joinedV1ToV2(old JoinedV1) Joined {
	return Joined{User: old.User, Email: old.Email, Name: old.Name, Plan: "basic"}
}

// PlanChanged moves a member to another plan: no personal data.
//
//cqrs:event Member name=club.member.plan-changed
type PlanChanged struct{ Plan string }

// ApplyJoined records the member's details.
func (m *Member) ApplyJoined(e Joined) { m.Email, m.Name, m.Plan = e.Email, e.Name, e.Plan }

// ApplyPlanChanged changes the plan.
func (m *Member) ApplyPlanChanged(e PlanChanged) { m.Plan = e.Plan }
