package collisions

//cqrs:aggregate
type Account struct{}

//cqrs:event Account
type Deposited struct{}

//cqrs:command Account
type Deposit struct{}

func (a *Account) ApplyDeposited(Deposited) {}

func (a *Account) HandleDeposit(Deposit) ([]AccountEvent, error) { return nil, nil }

// Apply is generated on Account.
func (a *Account) Apply() {}

// Each of these is a name the generated file declares.
type AccountRepository struct{}

func NewAccountRepository() {}

const DepositedEventName = "x"

var AccountStreamType = 1

func cqrsMarshalDeposited() {}

// isAccountCommand is generated on each command.
func (Deposit) isAccountCommand() {}

// NewCounter and Counter: the aggregate NewCounter's repository type is
// NewCounterRepository, which is also Counter's constructor.

//cqrs:aggregate
type Counter struct{}

//cqrs:aggregate
type NewCounter struct{}

//cqrs:event Counter
type Incremented struct{}

//cqrs:event NewCounter
type Created struct{}

func (c *Counter) ApplyIncremented(Incremented) {}
func (c *NewCounter) ApplyCreated(Created)      {}

// AccountCommand is the generated command interface.
type AccountCommand interface{}
