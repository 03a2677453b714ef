package account

import "strconv"

func cents(s string) int64 { n, _ := strconv.ParseInt(s, 10, 64); return n }
