package postgres

// OpenAtVersion is Open migrating the schema only up to the given
// version: the database an older build left, for tests of upgrades.
var OpenAtVersion = open
