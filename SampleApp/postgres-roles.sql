-- The sample's roles, which docker-compose.yml has PostgreSQL create with the database:
--   kappa_writer, kappa_reader  the log's group roles; `cart-app migrate`, run as the owner,
--                               grants them their privileges on the log (Migrations/log/0005)
--   cart_app                    `cart-app serve` logs in as it to append: granted kappa_writer
--   cart_projector              the projections and the read models: granted kappa_reader, and
--                               CREATE on the database for the read models' schemas; its
--                               transactions hold no follower of the log back
-- The passwords are the sample's; choose your own.
CREATE ROLE kappa_writer NOLOGIN;
CREATE ROLE kappa_reader NOLOGIN;
CREATE ROLE cart_app LOGIN PASSWORD 'cart-app' IN ROLE kappa_writer;
CREATE ROLE cart_projector LOGIN PASSWORD 'cart-projector' IN ROLE kappa_reader;
DO $grant$
BEGIN
    EXECUTE format('GRANT CREATE ON DATABASE %I TO cart_projector', current_database());
END
$grant$;
