package bench

// The made-up secrets, for the tests that prove they never reach the output.
const (
	Credential             = benchCredential
	RotatedCredential      = rotatedCredential
	FloorCredential        = floorCredential
	FloorRotatedCredential = floorRotatedCredential
)
