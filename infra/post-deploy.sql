-- Run once in the `warehouse` database as the Entra admin (sqlcmd -G, or the portal's query editor), with
-- the identity's name from the deployment output `identityName`. It makes the managed identity a contained
-- user that can create its tables and load them, and nothing more.
CREATE USER [$(IdentityName)] FROM EXTERNAL PROVIDER;
ALTER ROLE db_datareader ADD MEMBER [$(IdentityName)];
ALTER ROLE db_datawriter ADD MEMBER [$(IdentityName)];
ALTER ROLE db_ddladmin ADD MEMBER [$(IdentityName)];
