package mongodb

// OpenAtVersion is Open bringing the schema only up to the given version:
// the database an older build left, for tests of upgrades.
var OpenAtVersion = open
