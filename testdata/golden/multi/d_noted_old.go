package multi

// Noted is at version 3; these are the shapes it was stored with before,
// lifted by upcasters.

// NotedV1 is order.noted@1.
type NotedV1 struct{ Note string }

// NotedV2 is order.noted@2.
type NotedV2 struct{ Text []byte }

//cqrs:upcast
func notedV1ToV2(old NotedV1) NotedV2 { return NotedV2{Text: []byte(old.Note)} }

//cqrs:upcast
func notedV2ToV3(old NotedV2) Noted { return Noted{Text: string(old.Text)} }
