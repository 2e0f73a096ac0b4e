// Package mongodb is an llmproxy.Storage on MongoDB, using the official Go
// driver.
//
// It relies on single-document atomicity only and never on multi-document
// transactions, which a standalone MongoDB (and FerretDB, the server the
// tests run against) does not have: a virtual key and its assignments are
// one document, and usage is an append-only ledger of one document per
// request, summed on read.
//
// Collections, in the database that the URI names:
//
//	connections  one document per connection; credentials sealed
//	models       one document per model
//	keys         one document per virtual key, assignments embedded
//	usage        the usage ledger, _id = UsageRecord.ID
//	usage_daily  daily rollups of the ledger (rollups.go)
//	usage_hourly hourly traffic rollups of the ledger, by key (traffic.go)
//	responses    the Responses API's stored responses, _id = their ID;
//	             at most 16 MiB each, MongoDB's document limit
//	meta         {_id:"config", version} and {_id:"schema", version}
//
// The code follows MongoDB's documented semantics. The tests run against
// FerretDB v1.24 (SQLite handler), which differs in ways the code works
// around, each noted where it happens:
//   - $group computes only its first accumulator: SumUsage runs one $group
//     per sum there, and Traffic sums the hourly rollups itself;
//   - a unique index violated by an update is an InternalError, not
//     E11000: isDuplicate recognizes it;
//   - findAndModify takes no projection; there are no partial indexes (so
//     assignment IDs are checked unique by a query), no transactions (none
//     are used) and no TTL indexes (none are used);
//   - concurrent $inc on one document loses updates: the config version
//     is set to a fresh value instead;
//   - filters other than _id equality and sorts are not pushed down to
//     SQLite, so every listing page, RecentUsage and each daily rollup's
//     upsert scan their collection: correct, slow for large sets, unlike
//     MongoDB's indexes (the hourly rollups' _id is their group, so
//     their upserts are an _id lookup on both);
//   - endSessions, sent by the driver on disconnect, is unknown: ignored.
package mongodb

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"go.mongodb.org/mongo-driver/v2/x/mongo/driver/connstring"

	"github.com/go-llm-proxy/llmproxy"
	"github.com/go-llm-proxy/llmproxy/secret"
)

// Options configures a Store. The zero value works for a database without
// stored credentials.
type Options struct {
	// Sealer encrypts connection credentials at rest. Nil means
	// credentials cannot be stored or read (an error, never plaintext).
	Sealer secret.Sealer
}

// Store is an llmproxy.Storage on a MongoDB database. It is safe for
// concurrent use, and several Stores (in several processes) may share one
// database.
type Store struct {
	client *mongo.Client
	db     *mongo.Database
	sealer secret.Sealer
	// ferretDB is set when the server is FerretDB, whose differences
	// from MongoDB some queries work around.
	ferretDB bool

	connections *mongo.Collection
	models      *mongo.Collection
	keys        *mongo.Collection
	usage       *mongo.Collection
	usageDaily  *mongo.Collection
	usageHourly *mongo.Collection
	responses   *mongo.Collection
	meta        *mongo.Collection
}

var _ llmproxy.Storage = (*Store)(nil)

// defaultServerSelectionTimeout replaces the driver's 30 s default, so that
// an unreachable server is reported at start within a few seconds. A URI
// that sets serverSelectionTimeoutMS keeps its own value.
const defaultServerSelectionTimeout = 5 * time.Second

// Open connects to the MongoDB server of uri, checks that it answers, and
// brings the database's collections and indexes up to date (see
// SchemaVersion). The URI must name the database, e.g.
// "mongodb://127.0.0.1:27017/llmproxy".
func Open(ctx context.Context, uri string, opts Options) (*Store, error) {
	return open(ctx, uri, opts, 0)
}

// open is Open bringing the schema only up to version upTo (0: all the
// way), for tests of upgrades.
func open(ctx context.Context, uri string, opts Options, upTo int) (*Store, error) {
	cs, err := connstring.ParseAndValidate(uri)
	if err != nil {
		return nil, fmt.Errorf("%w: mongodb URI: %v", llmproxy.ErrInvalid, redactURIError(err, uri))
	}
	if cs.Database == "" {
		return nil, fmt.Errorf("%w: mongodb URI names no database: add it as the path, e.g. mongodb://host:27017/llmproxy", llmproxy.ErrInvalid)
	}
	co := options.Client().ApplyURI(uri)
	if !cs.ServerSelectionTimeoutSet {
		co.SetServerSelectionTimeout(defaultServerSelectionTimeout)
	}
	client, err := mongo.Connect(co)
	if err != nil {
		return nil, fmt.Errorf("mongodb: connect to %s: %w", hostsOf(cs), err)
	}
	if err := client.Ping(ctx, nil); err != nil {
		disconnect(client)
		return nil, fmt.Errorf("mongodb: cannot reach %s: %w", hostsOf(cs), err)
	}
	db := client.Database(cs.Database)
	s := &Store{
		client:      client,
		db:          db,
		sealer:      opts.Sealer,
		connections: db.Collection("connections"),
		models:      db.Collection("models"),
		keys:        db.Collection("keys"),
		usage:       db.Collection("usage"),
		usageDaily:  db.Collection("usage_daily"),
		usageHourly: db.Collection("usage_hourly"),
		responses:   db.Collection("responses"),
		meta:        db.Collection("meta"),
	}
	if s.ferretDB, err = isFerretDB(ctx, db); err != nil {
		disconnect(client)
		return nil, err
	}
	if err := s.migrate(ctx, upTo); err != nil {
		disconnect(client)
		return nil, err
	}
	return s, nil
}

// isFerretDB reports whether the server is FerretDB, which adds
// ferretdbVersion to its buildInfo answer.
func isFerretDB(ctx context.Context, db *mongo.Database) (bool, error) {
	var info bson.M
	if err := db.RunCommand(ctx, bson.D{{Key: "buildInfo", Value: 1}}).Decode(&info); err != nil {
		return false, fmt.Errorf("mongodb: buildInfo: %w", err)
	}
	_, ok := info["ferretdbVersion"]
	return ok, nil
}

// hostsOf names the servers of a connection string without its
// credentials, for error messages.
func hostsOf(cs *connstring.ConnString) string {
	return strings.Join(cs.Hosts, ",")
}

// redactURIError keeps a URI's password out of a parse error. The URI did
// not parse, so its password is found by hand: between the first ':' and
// the '@' of the part before the path.
func redactURIError(err error, uri string) string {
	msg := err.Error()
	_, rest, _ := strings.Cut(uri, "://")
	authority, _, _ := strings.Cut(rest, "/")
	if at := strings.LastIndex(authority, "@"); at >= 0 {
		if _, pw, ok := strings.Cut(authority[:at], ":"); ok && pw != "" {
			msg = strings.ReplaceAll(msg, pw, "xxxxx")
		}
	}
	return msg
}

func disconnect(c *mongo.Client) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	// FerretDB answers the driver's endSessions with CommandNotFound;
	// the error on disconnect is harmless either way.
	_ = c.Disconnect(ctx)
}

// Close disconnects from the server. Closing twice is harmless.
func (s *Store) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := s.client.Disconnect(ctx)
	if errors.Is(err, mongo.ErrClientDisconnected) || isCommandNotFound(err) {
		return nil // closed before, or FerretDB without endSessions
	}
	return err
}

func isCommandNotFound(err error) bool {
	var se mongo.ServerError
	return errors.As(err, &se) && se.HasErrorCode(59)
}

// now returns the current time as stored: BSON dates have millisecond
// precision, so the time set on a record is the one read back.
func now() time.Time {
	return time.Now().UTC().Truncate(time.Millisecond)
}

// ConfigVersion returns the stamp that every configuration write replaces
// with a fresh unique value. It is one small document read by _id.
func (s *Store) ConfigVersion(ctx context.Context) (string, error) {
	var doc struct {
		Version string `bson:"version"`
	}
	err := s.meta.FindOne(ctx, bson.D{{Key: "_id", Value: metaConfig}}).Decode(&doc)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("mongodb: config version: %w", err)
	}
	return doc.Version, nil
}

// bumpConfigVersion stamps the configuration with a new unique version. It
// sets a fresh value rather than incrementing a counter: any change of the
// stamp is enough for pollers, and FerretDB loses concurrent $inc updates
// on one document, where MongoDB would not.
//
// It runs after the configuration write it announces, so a poller that
// reads the version before the configuration never misses a change.
func (s *Store) bumpConfigVersion(ctx context.Context) error {
	var err error
	for range 3 {
		_, err = s.meta.UpdateOne(ctx,
			byID(metaConfig),
			bson.D{{Key: "$set", Value: bson.D{{Key: "version", Value: bson.NewObjectID().Hex()}}}},
			options.UpdateOne().SetUpsert(true))
		// A duplicate key means two first-ever upserts raced and the
		// other one created the document; the next try updates it.
		if !s.isDuplicate(err) {
			break
		}
	}
	if err != nil {
		return fmt.Errorf("mongodb: config version: %w", err)
	}
	return nil
}

// afterWrite bumps the configuration version after a successful write.
// When the bump fails, the write itself stood: the error says so, since a
// retried create would then fail with ErrAlreadyExists.
func (s *Store) afterWrite(ctx context.Context, err error) error {
	if err != nil {
		return err
	}
	if err := s.bumpConfigVersion(context.WithoutCancel(ctx)); err != nil {
		return fmt.Errorf("written, but other replicas may not see it until the next change: %w", err)
	}
	return nil
}

// update applies update to the document with _id id in one atomic
// findAndModify, and returns the document's creation time.
// mongo.ErrNoDocuments means there is no such document.
func (s *Store) update(ctx context.Context, coll *mongo.Collection, id string, update bson.D) (time.Time, error) {
	var doc struct {
		CreatedAt time.Time `bson:"created_at"`
	}
	// No projection to created_at: FerretDB's findAndModify does not
	// implement one ("fields"), and the documents are small.
	err := coll.FindOneAndUpdate(ctx, byID(id), update).Decode(&doc)
	return doc.CreatedAt, err
}

// isDuplicate reports whether err is a unique index violation.
func (s *Store) isDuplicate(err error) bool {
	if err == nil {
		return false
	}
	if mongo.IsDuplicateKeyError(err) {
		return true
	}
	// FerretDB (v1.24, SQLite handler) reports a unique index violated by
	// an update not as MongoDB's E11000 but as an InternalError (code 1)
	// carrying SQLite's message.
	var se mongo.ServerError
	return s.ferretDB && errors.As(err, &se) && se.HasErrorCodeWithMessage(1, "UNIQUE constraint failed")
}

// findPage lists a collection in _id order after opts.After.
func findPage[D any](ctx context.Context, coll *mongo.Collection, opts llmproxy.ListOptions) ([]D, error) {
	filter := bson.D{}
	if opts.After != "" {
		filter = bson.D{{Key: "_id", Value: bson.D{{Key: "$gt", Value: opts.After}}}}
	}
	fo := options.Find().SetSort(bson.D{{Key: "_id", Value: 1}})
	if opts.Limit > 0 {
		fo.SetLimit(int64(opts.Limit))
	}
	cur, err := coll.Find(ctx, filter, fo)
	if err != nil {
		return nil, fmt.Errorf("mongodb: list %s: %w", coll.Name(), err)
	}
	var docs []D
	if err := cur.All(ctx, &docs); err != nil {
		return nil, fmt.Errorf("mongodb: list %s: %w", coll.Name(), err)
	}
	return docs, nil
}

// findByID decodes the document with the given ID; what names its kind in
// errors ("connection", "model", "key").
func findByID[D any](ctx context.Context, coll *mongo.Collection, what, id string) (*D, error) {
	var d D
	err := coll.FindOne(ctx, byID(id)).Decode(&d)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return nil, fmt.Errorf("%w: %s %s", llmproxy.ErrNotFound, what, id)
	}
	if err != nil {
		return nil, fmt.Errorf("mongodb: %s: %w", what, err)
	}
	return &d, nil
}

// exists reports whether a document matches filter.
func exists(ctx context.Context, coll *mongo.Collection, filter bson.D) (bool, error) {
	err := coll.FindOne(ctx, filter, options.FindOne().SetProjection(bson.D{{Key: "_id", Value: 1}})).Err()
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, mongo.ErrNoDocuments):
		return false, nil
	}
	return false, fmt.Errorf("mongodb: query %s: %w", coll.Name(), err)
}

// byID is the filter for one document.
func byID(id string) bson.D { return bson.D{{Key: "_id", Value: id}} }
