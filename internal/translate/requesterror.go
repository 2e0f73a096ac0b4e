package translate

// RequestError is a request that cannot be translated or is malformed; the gateway answers it as a 400 naming Param.
type RequestError struct {
	Param   string
	Message string
}

// Error returns Message.
func (e *RequestError) Error() string { return e.Message }
