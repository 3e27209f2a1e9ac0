using './main.bicep'

param prefix = 'etlprod'
param image = 'myregistry.azurecr.io/etl-platform:0.1.0'
param sqlAdminLogin = 'etl-sql-admins'
param sqlAdminObjectId = '00000000-0000-0000-0000-000000000000'
param uiAuthClientId = '00000000-0000-0000-0000-000000000000'
param allowedIpRanges = []
param alertEmails = ['data-platform@example.com']
param dagsterDbAdminPassword = readEnvironmentVariable('DAGSTER_DB_ADMIN_PASSWORD')
