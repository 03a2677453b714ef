package shop

import (
	"errors"
	"fmt"
	"strings"
)

// Customer rule errors.
var (
	ErrCustomerExists = errors.New("customer: already registered")
	ErrNotRegistered  = errors.New("customer: not registered")
	ErrInvalidEmail   = errors.New("customer: invalid email")
)

// Customer is a registered customer.
//
//cqrs:aggregate name=shop.customer
type Customer struct {
	Name       string
	Email      string
	Registered bool
}

// CustomerRegistered records a new customer.
//
//cqrs:event Customer name=shop.customer.registered
type CustomerRegistered struct {
	Name  string
	Email string
}

// EmailChanged records a customer's new email address.
//
//cqrs:event Customer name=shop.customer.email_changed
type EmailChanged struct {
	Email string
}

// RegisterCustomer asks to register a customer.
//
//cqrs:command Customer
type RegisterCustomer struct {
	Name  string
	Email string
}

// ChangeEmail asks to change a registered customer's email address.
//
//cqrs:command Customer
type ChangeEmail struct {
	Email string
}

// ApplyCustomerRegistered evolves the state by a CustomerRegistered event.
func (c *Customer) ApplyCustomerRegistered(e CustomerRegistered) {
	c.Name, c.Email, c.Registered = e.Name, e.Email, true
}

// ApplyEmailChanged evolves the state by an EmailChanged event.
func (c *Customer) ApplyEmailChanged(e EmailChanged) { c.Email = e.Email }

// HandleRegisterCustomer decides a RegisterCustomer command.
func (c *Customer) HandleRegisterCustomer(cmd RegisterCustomer) ([]CustomerEvent, error) {
	if c.Registered {
		return nil, ErrCustomerExists
	}
	if err := validEmail(cmd.Email); err != nil {
		return nil, err
	}
	return []CustomerEvent{CustomerRegistered{Name: cmd.Name, Email: cmd.Email}}, nil
}

// HandleChangeEmail decides a ChangeEmail command.
func (c *Customer) HandleChangeEmail(cmd ChangeEmail) ([]CustomerEvent, error) {
	if !c.Registered {
		return nil, ErrNotRegistered
	}
	if err := validEmail(cmd.Email); err != nil {
		return nil, err
	}
	return []CustomerEvent{EmailChanged{Email: cmd.Email}}, nil
}

// validEmail is a deliberately small check: one @ with text on both sides.
func validEmail(s string) error {
	local, domain, ok := strings.Cut(s, "@")
	if !ok || local == "" || domain == "" || strings.Contains(domain, "@") {
		return fmt.Errorf("%w: %q", ErrInvalidEmail, s)
	}
	return nil
}
