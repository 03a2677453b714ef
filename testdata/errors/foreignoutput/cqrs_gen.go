// This file was written by hand; cqrsgen must not overwrite it.

package foreignoutput
