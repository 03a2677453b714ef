package saga_types

//cqrs:saga
type lower struct{}

//cqrs:saga
type Number int

//cqrs:saga
type Idle struct{}

//cqrs:saga name=shared
type First struct{}

//cqrs:saga name=shared
type Second struct{}

//cqrs:saga Account name=
type Args struct{}

//cqrs:saga
type Clash struct{}

const ClashSagaName = "mine"
