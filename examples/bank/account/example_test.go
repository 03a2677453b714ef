package account_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/cqrsgen/cqrsgen/backends/memory"
	"github.com/cqrsgen/cqrsgen/examples/bank/account"
	"github.com/cqrsgen/cqrsgen/runtime"
)

// The generated repository executes commands (load, decide, append with the
// loaded version), returns business-rule errors as they are, and reads the
// typed event stream back.
func ExampleNewAccountRepository() {
	ctx := context.Background()
	store := memory.New()
	defer store.Close()
	accounts := account.NewAccountRepository(store)

	for _, c := range []account.AccountCommand{
		account.OpenAccount{Owner: "Ada"},
		account.Deposit{Amount: 100_00, Reference: "salary"},
		account.Withdraw{Amount: 30_00, Reference: "rent"},
	} {
		if _, err := accounts.Execute(ctx, "acc-1", c); err != nil {
			fmt.Println(err)
		}
	}
	_, err := accounts.Execute(ctx, "acc-1", account.Withdraw{Amount: 500_00})
	fmt.Println(errors.Is(err, account.ErrInsufficientFunds), err)

	// A repeated idempotency key returns the first result; nothing is
	// deposited twice.
	for range 2 {
		v, err := accounts.Execute(ctx, "acc-1", account.Deposit{Amount: 5_00}, runtime.IdempotencyKey("req-7"))
		fmt.Println("keyed deposit: version", v, err)
	}

	acc, version, err := accounts.Load(ctx, "acc-1")
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("%s: balance %d cents at version %d\n", acc.Owner, acc.Balance, version)

	for env, err := range accounts.Events(ctx, "acc-1", 1) {
		if err != nil {
			fmt.Println(err)
			return
		}
		fmt.Printf("v%d %s %+v\n", env.Version, env.Name, env.Event)
	}
	// Output:
	// true account: insufficient funds: balance 7000, asked 50000
	// keyed deposit: version 4 <nil>
	// keyed deposit: version 4 <nil>
	// Ada: balance 7500 cents at version 4
	// v2 bank.account.deposited {Amount:10000 Reference:salary}
	// v3 bank.account.withdrawn {Amount:3000 Reference:rent}
	// v4 bank.account.deposited {Amount:500 Reference:}
}
