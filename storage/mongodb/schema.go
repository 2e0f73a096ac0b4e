package mongodb

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// IDs of the documents in the meta collection.
const (
	metaConfig = "config" // {version: string}, see ConfigVersion
	metaSchema = "schema" // {version: int}, see SchemaVersion
)

// migrations are the schema steps; step i brings the database to version
// i+1. Each step must be idempotent and additive (create collections and
// indexes, backfill fields) — never drop or rewrite data — because several
// replicas may run it at the same time, and a step may be run again after
// a crash before its version was recorded. Append new steps; never edit a
// released one.
var migrations = []func(ctx context.Context, s *Store) error{
	// 1: unique names and hashes, lookup indexes for the referential
	// checks and for summing usage.
	func(ctx context.Context, s *Store) error {
		unique := func(name string, keys bson.D) mongo.IndexModel {
			return mongo.IndexModel{Keys: keys, Options: options.Index().SetName(name).SetUnique(true)}
		}
		plain := func(name string, keys bson.D) mongo.IndexModel {
			return mongo.IndexModel{Keys: keys, Options: options.Index().SetName(name)}
		}
		for _, ix := range []struct {
			coll    *mongo.Collection
			indexes []mongo.IndexModel
		}{
			{s.connections, []mongo.IndexModel{
				unique("name_unique", bson.D{{Key: "name", Value: 1}}),
			}},
			{s.models, []mongo.IndexModel{
				unique("name_connection_unique", bson.D{{Key: "name", Value: 1}, {Key: "connection_id", Value: 1}}),
				plain("connection_id", bson.D{{Key: "connection_id", Value: 1}}),
			}},
			{s.keys, []mongo.IndexModel{
				unique("name_unique", bson.D{{Key: "name", Value: 1}}),
				unique("hash_unique", bson.D{{Key: "hash", Value: 1}}),
				plain("assignments_connection_id", bson.D{{Key: "assignments.connection_id", Value: 1}}),
				plain("assignments_model_id", bson.D{{Key: "assignments.model_id", Value: 1}}),
				plain("assignments_id", bson.D{{Key: "assignments.id", Value: 1}}),
			}},
			{s.usage, []mongo.IndexModel{
				plain("key_time", bson.D{{Key: "key_id", Value: 1}, {Key: "time_ns", Value: 1}}),
				plain("time", bson.D{{Key: "time_ns", Value: 1}}),
			}},
		} {
			// createIndexes with the same names and specs is a no-op
			// when they exist, so replicas may run this concurrently.
			if _, err := ix.coll.Indexes().CreateMany(ctx, ix.indexes); err != nil {
				return fmt.Errorf("indexes of %s: %w", ix.coll.Name(), err)
			}
		}
		// The config version document exists from the start, so that
		// ConfigVersion is never empty.
		_, err := s.meta.UpdateOne(ctx, byID(metaConfig),
			bson.D{{Key: "$setOnInsert", Value: bson.D{{Key: "version", Value: bson.NewObjectID().Hex()}}}},
			options.UpdateOne().SetUpsert(true))
		if err != nil && !s.isDuplicate(err) {
			return fmt.Errorf("config version: %w", err)
		}
		return nil
	},
	// 2: the Responses API's stored responses, with the index the expiry
	// sweep (DeleteExpiredResponses) looks them up by. Creating the index
	// creates the collection; older builds never read it.
	func(ctx context.Context, s *Store) error {
		_, err := s.responses.Indexes().CreateOne(ctx, mongo.IndexModel{
			Keys:    bson.D{{Key: "expires_at", Value: 1}},
			Options: options.Index().SetName("expires_at"),
		})
		if err != nil {
			return fmt.Errorf("indexes of %s: %w", s.responses.Name(), err)
		}
		return nil
	},
	// 3: the daily rollups of the ledger (rollups.go), one document per
	// group, unique on the group. The ledger written before is rolled up
	// by RebuildRollups (`llm-proxy usage rebuild-rollups`), not here: a
	// rebuild races the $inc of replicas already running this build.
	func(ctx context.Context, s *Store) error {
		_, err := s.usageDaily.Indexes().CreateOne(ctx, mongo.IndexModel{
			Keys:    rollupKeyFields(),
			Options: options.Index().SetName("group_unique").SetUnique(true),
		})
		if err != nil {
			return fmt.Errorf("indexes of %s: %w", s.usageDaily.Name(), err)
		}
		return nil
	},
	// 4: the hourly traffic rollups (traffic.go), whose _id is their
	// (hour, key), indexed on (hour, key) for Traffic's range of hours;
	// and the ledger indexes that RecentUsage walks newest first by model,
	// by status, by key and model, and by the status of a key or a model
	// (by key and by time alone, step 1's indexes serve), so that a
	// combination that matches little does not read all that one field
	// matches.
	// As in step 3, the ledger written before is rolled up by
	// RebuildRollups (`llm-proxy usage rebuild-rollups`), not here.
	func(ctx context.Context, s *Store) error {
		_, err := s.usageHourly.Indexes().CreateOne(ctx, mongo.IndexModel{
			Keys:    bson.D{{Key: "hour", Value: 1}, {Key: "key_id", Value: 1}},
			Options: options.Index().SetName("hour_key_unique").SetUnique(true),
		})
		if err != nil {
			return fmt.Errorf("indexes of %s: %w", s.usageHourly.Name(), err)
		}
		_, err = s.usage.Indexes().CreateMany(ctx, []mongo.IndexModel{
			{Keys: bson.D{{Key: "model", Value: 1}, {Key: "time_ns", Value: 1}}, Options: options.Index().SetName("model_time")},
			{Keys: bson.D{{Key: "status", Value: 1}, {Key: "time_ns", Value: 1}}, Options: options.Index().SetName("status_time")},
			{Keys: bson.D{{Key: "key_id", Value: 1}, {Key: "model", Value: 1}, {Key: "time_ns", Value: 1}}, Options: options.Index().SetName("key_model_time")},
			{Keys: bson.D{{Key: "key_id", Value: 1}, {Key: "status", Value: 1}, {Key: "time_ns", Value: 1}}, Options: options.Index().SetName("key_status_time")},
			{Keys: bson.D{{Key: "model", Value: 1}, {Key: "status", Value: 1}, {Key: "time_ns", Value: 1}}, Options: options.Index().SetName("model_status_time")},
		})
		if err != nil {
			return fmt.Errorf("indexes of %s: %w", s.usage.Name(), err)
		}
		return nil
	},
}

// SchemaVersion returns the version of the database's schema: the number
// of schema steps applied to it (0 for an empty database). Open brings it
// to the latest version this build knows.
func (s *Store) SchemaVersion(ctx context.Context) (int, error) {
	var doc struct {
		Version int `bson:"version"`
	}
	err := s.meta.FindOne(ctx, byID(metaSchema)).Decode(&doc)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("mongodb: schema version: %w", err)
	}
	return doc.Version, nil
}

// migrate applies the schema steps the database lacks, up to version upTo
// (all of them when upTo is 0: only tests of upgrades stop earlier). It is
// safe when several processes run it at once: every step is idempotent,
// and the recorded version only moves forward.
func (s *Store) migrate(ctx context.Context, upTo int) error {
	var err error
	// Concurrent first starts may collide while the server creates the
	// same collection twice (FerretDB on SQLite reports this as an error
	// rather than waiting); the steps are idempotent, so try again.
	for attempt := 0; attempt < 5; attempt++ {
		if attempt > 0 {
			select {
			case <-ctx.Done():
				return fmt.Errorf("mongodb: schema setup: %w (after %v)", ctx.Err(), err)
			case <-time.After(time.Duration(attempt*attempt) * 50 * time.Millisecond):
			}
		}
		if err = s.migrateOnce(ctx, upTo); err == nil {
			return nil
		}
		if errors.Is(err, errSchemaTooNew) {
			return err
		}
	}
	return err
}

var errSchemaTooNew = errors.New("schema too new")

func (s *Store) migrateOnce(ctx context.Context, upTo int) error {
	have, err := s.SchemaVersion(ctx)
	if err != nil {
		return err
	}
	if have > len(migrations) {
		return fmt.Errorf("mongodb: %w: the database's schema is version %d, newer than this build knows (%d); upgrade llm-proxy", errSchemaTooNew, have, len(migrations))
	}
	want := len(migrations)
	if upTo > 0 {
		want = min(upTo, want)
	}
	for v := have; v < want; v++ {
		if err := migrations[v](ctx, s); err != nil {
			return fmt.Errorf("mongodb: schema step %d: %w", v+1, err)
		}
		if err := s.recordSchemaVersion(ctx, v+1); err != nil {
			return err
		}
	}
	return nil
}

// recordSchemaVersion raises the recorded version to v, never lowering it.
// The filter matches only a lower version; when the document has v or more
// already, the upsert's insert collides on _id, which means another
// process got there first.
func (s *Store) recordSchemaVersion(ctx context.Context, v int) error {
	_, err := s.meta.UpdateOne(ctx,
		bson.D{{Key: "_id", Value: metaSchema}, {Key: "version", Value: bson.D{{Key: "$lt", Value: v}}}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "version", Value: v}}}},
		options.UpdateOne().SetUpsert(true))
	if err != nil && !s.isDuplicate(err) {
		return fmt.Errorf("mongodb: record schema version %d: %w", v, err)
	}
	return nil
}
