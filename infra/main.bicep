// The platform's Azure footprint: the lake (ADLS Gen2), the warehouse (Azure SQL), Key Vault, Dagster's own
// storage (PostgreSQL Flexible Server) and the three containers (code location, webserver, daemon) in one
// Container Apps environment, all acting as one user-assigned managed identity.
targetScope = 'resourceGroup'

@description('Short lower-case prefix for every resource name.')
@minLength(3)
@maxLength(11)
param prefix string

param location string = resourceGroup().location

@description('The container image built from the repository Dockerfile, e.g. myregistry.azurecr.io/etl-platform:1.0.0.')
param image string

@description('Entra group (or user) that administers the Azure SQL server: its display name and object id.')
param sqlAdminLogin string
param sqlAdminObjectId string

@description('Administrator of the PostgreSQL server that holds Dagster runs and events.')
param dagsterDbAdminLogin string = 'dagster'
@secure()
param dagsterDbAdminPassword string

@description('Entra app registration that guards the Dagster UI (the open-source webserver has no login of its own).')
param uiAuthClientId string

@description('Address ranges (e.g. an office or a CI runner) allowed to reach the storage account, the Key Vault and the SQL server besides the apps.')
param allowedIpRanges array = []

@description('Where SQL threat-detection alerts go.')
param alertEmails array

var tenantId = subscription().tenantId
var storageName = toLower(take('${prefix}lake${uniqueString(resourceGroup().id)}', 24))
var lakeContainer = 'lake'
var logsContainer = 'dagster-compute-logs'
var roles = {
  storageBlobDataContributor: 'ba92f5b4-2d11-453d-a403-e96b0029c9fe'
  keyVaultSecretsUser: '4633458b-17de-408a-b874-0445c86b69e6'
}

resource identity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: '${prefix}-etl-id'
  location: location
}

// The apps run in their own subnet; the lake, the vault and the SQL server admit that subnet through service
// endpoints, so their firewalls can deny everything else.
resource network 'Microsoft.Network/virtualNetworks@2023-11-01' = {
  name: '${prefix}-vnet'
  location: location
  properties: {
    addressSpace: { addressPrefixes: ['10.40.0.0/16'] }
    subnets: [
      {
        name: 'apps'
        properties: {
          addressPrefix: '10.40.0.0/23'
          delegations: [{ name: 'apps', properties: { serviceName: 'Microsoft.App/environments' } }]
          serviceEndpoints: [
            { service: 'Microsoft.Storage' }
            { service: 'Microsoft.KeyVault' }
            { service: 'Microsoft.Sql' }
          ]
        }
      }
    ]
  }
}

var appsSubnetId = network.properties.subnets[0].id

resource logs 'Microsoft.OperationalInsights/workspaces@2023-09-01' = {
  name: '${prefix}-logs'
  location: location
  properties: {
    sku: { name: 'PerGB2018' }
    retentionInDays: 90
  }
}

// The lake: hierarchical namespace, no anonymous access, no shared keys, TLS 1.2.
resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  // checkov:skip=CKV_AZURE_59: the public endpoint answers only the apps' subnet and allowedIpRanges (firewall default deny); private endpoints and their DNS zones are the platform team's network choice
  // checkov:skip=CKV_AZURE_43: the name is take(…, 24) of lower-case letters and digits, which checkov cannot evaluate
  name: storageName
  location: location
  kind: 'StorageV2'
  sku: { name: 'Standard_GRS' }
  properties: {
    isHnsEnabled: true
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
    allowBlobPublicAccess: false
    allowSharedKeyAccess: false
    allowCrossTenantReplication: false
    isLocalUserEnabled: false
    isSftpEnabled: false
    defaultToOAuthAuthentication: true
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      defaultAction: 'Deny'
      bypass: 'AzureServices'
      ipRules: [for range in allowedIpRanges: { value: range, action: 'Allow' }]
      virtualNetworkRules: [{ id: appsSubnetId, action: 'Allow' }]
    }
    sasPolicy: { sasExpirationPeriod: '0.01:00:00', expirationAction: 'Log' }
    encryption: {
      keySource: 'Microsoft.Storage'
      requireInfrastructureEncryption: true
      services: {
        blob: { enabled: true }
        file: { enabled: true }
      }
    }
  }
}

resource blobService 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' = {
  parent: storage
  name: 'default'
  properties: {
    deleteRetentionPolicy: { enabled: true, days: 14 }
    containerDeleteRetentionPolicy: { enabled: true, days: 14 }
  }
}

resource lake 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: blobService
  name: lakeContainer
  properties: { publicAccess: 'None' }
}

resource computeLogs 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: blobService
  name: logsContainer
  properties: { publicAccess: 'None' }
}

resource lakeWriter 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  scope: storage
  name: guid(storage.id, identity.id, roles.storageBlobDataContributor)
  properties: {
    principalId: identity.properties.principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageBlobDataContributor)
  }
}

// Secrets (source passwords, API keys, Dagster's database password) in RBAC mode; the identity reads only.
resource vault 'Microsoft.KeyVault/vaults@2023-07-01' = {
  name: '${prefix}-kv-${uniqueString(resourceGroup().id)}'
  location: location
  properties: {
    tenantId: tenantId
    sku: { family: 'A', name: 'standard' }
    enableRbacAuthorization: true
    enableSoftDelete: true
    softDeleteRetentionInDays: 90
    enablePurgeProtection: true
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      defaultAction: 'Deny'
      bypass: 'AzureServices'
      ipRules: [for range in allowedIpRanges: { value: range }]
      virtualNetworkRules: [{ id: appsSubnetId }]
    }
  }
}

resource dagsterDbPassword 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = {
  parent: vault
  name: 'dagster-pg-password'
  properties: {
    value: dagsterDbAdminPassword
    contentType: 'text/plain'
    attributes: { exp: dateTimeToEpoch(dateTimeAdd(utcNow(), 'P1Y')) }
  }
}

resource secretsReader 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  scope: vault
  name: guid(vault.id, identity.id, roles.keyVaultSecretsUser)
  properties: {
    principalId: identity.properties.principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.keyVaultSecretsUser)
  }
}

// The warehouse: Entra-only authentication; the identity becomes a contained user (post-deploy.sql).
resource sqlServer 'Microsoft.Sql/servers@2023-08-01-preview' = {
  // checkov:skip=CKV_AZURE_113: the public endpoint answers only the apps' subnet and allowedIpRanges; see the storage account
  name: '${prefix}-sql-${uniqueString(resourceGroup().id)}'
  location: location
  identity: { type: 'SystemAssigned' }
  properties: {
    minimalTlsVersion: '1.2'
    publicNetworkAccess: 'Enabled'
    administrators: {
      administratorType: 'ActiveDirectory'
      azureADOnlyAuthentication: true
      login: sqlAdminLogin
      sid: sqlAdminObjectId
      tenantId: tenantId
      principalType: 'Group'
    }
  }
}

resource sqlAppsSubnet 'Microsoft.Sql/servers/virtualNetworkRules@2023-08-01-preview' = {
  parent: sqlServer
  name: 'apps'
  properties: { virtualNetworkSubnetId: appsSubnetId }
}

resource sqlAllowedRanges 'Microsoft.Sql/servers/firewallRules@2023-08-01-preview' = [for (range, i) in allowedIpRanges: {
  parent: sqlServer
  name: 'allowed-${i}'
  properties: { startIpAddress: split(range, '/')[0], endIpAddress: split(range, '/')[0] }
}]

resource sqlAuditing 'Microsoft.Sql/servers/auditingSettings@2023-08-01-preview' = {
  parent: sqlServer
  name: 'default'
  properties: {
    state: 'Enabled'
    isAzureMonitorTargetEnabled: true
    retentionDays: 90
  }
}

resource sqlAlerts 'Microsoft.Sql/servers/securityAlertPolicies@2023-08-01-preview' = {
  parent: sqlServer
  name: 'Default'
  properties: { state: 'Enabled', emailAccountAdmins: true, emailAddresses: alertEmails, disabledAlerts: [] }
}

resource warehouse 'Microsoft.Sql/servers/databases@2023-08-01-preview' = {
  // checkov:skip=CKV_AZURE_26: alerts go to alertEmails in the nested securityAlertPolicies below, which checkov's Bicep reader does not see
  // checkov:skip=CKV_AZURE_27: emailAccountAdmins is true in the nested securityAlertPolicies below, which checkov's Bicep reader does not see
  parent: sqlServer
  name: 'warehouse'
  location: location
  sku: { name: 'GP_S_Gen5_2', tier: 'GeneralPurpose' }
  properties: {
    autoPauseDelay: 60
    minCapacity: json('0.5')
    zoneRedundant: true
    requestedBackupStorageRedundancy: 'Geo'
  }

  resource alerts 'securityAlertPolicies' = {
    name: 'Default'
    properties: { state: 'Enabled', emailAccountAdmins: true, emailAddresses: alertEmails, disabledAlerts: [] }
  }
}

resource warehouseAuditing 'Microsoft.Sql/servers/databases/auditingSettings@2023-08-01-preview' = {
  parent: warehouse
  name: 'default'
  properties: { state: 'Enabled', isAzureMonitorTargetEnabled: true, retentionDays: 90 }
}


// Dagster's own storage: runs, events, schedules.
resource dagsterDb 'Microsoft.DBforPostgreSQL/flexibleServers@2023-06-01-preview' = {
  name: '${prefix}-dagster-pg-${uniqueString(resourceGroup().id)}'
  location: location
  sku: { name: 'Standard_B1ms', tier: 'Burstable' }
  properties: {
    version: '16'
    administratorLogin: dagsterDbAdminLogin
    administratorLoginPassword: dagsterDbAdminPassword
    storage: { storageSizeGB: 32 }
    backup: { backupRetentionDays: 14, geoRedundantBackup: 'Enabled' }
    network: { publicNetworkAccess: 'Enabled' }
  }
}

resource dagsterDbAllowAzure 'Microsoft.DBforPostgreSQL/flexibleServers/firewallRules@2023-06-01-preview' = {
  parent: dagsterDb
  name: 'AllowAzureServices'
  properties: { startIpAddress: '0.0.0.0', endIpAddress: '0.0.0.0' }
}

resource dagsterDatabase 'Microsoft.DBforPostgreSQL/flexibleServers/databases@2023-06-01-preview' = {
  parent: dagsterDb
  name: 'dagster'
}

resource dagsterDbLogConnections 'Microsoft.DBforPostgreSQL/flexibleServers/configurations@2023-06-01-preview' = {
  parent: dagsterDb
  name: 'log_connections'
  properties: { value: 'on', source: 'user-override' }
}

resource appsEnvironment 'Microsoft.App/managedEnvironments@2024-03-01' = {
  name: '${prefix}-apps'
  location: location
  properties: {
    vnetConfiguration: { infrastructureSubnetId: appsSubnetId, internal: false }
    workloadProfiles: [{ name: 'Consumption', workloadProfileType: 'Consumption' }]
    appLogsConfiguration: {
      destination: 'log-analytics'
      logAnalyticsConfiguration: {
        customerId: logs.properties.customerId
        sharedKey: logs.listKeys().primarySharedKey
      }
    }
  }
}

var dagsterEnv = [
  { name: 'DAGSTER_HOME', value: '/opt/dagster/home' }
  { name: 'DAGSTER_PG_HOST', value: dagsterDb.properties.fullyQualifiedDomainName }
  { name: 'DAGSTER_PG_USER', value: dagsterDbAdminLogin }
  { name: 'DAGSTER_PG_PASSWORD', secretRef: 'dagster-pg-password' }
  { name: 'DAGSTER_PG_DB', value: dagsterDatabase.name }
  { name: 'DAGSTER_LOGS_STORAGE_ACCOUNT', value: storage.name }
  { name: 'AZURE_CLIENT_ID', value: identity.properties.clientId }
  { name: 'ETL_CODE_LOCATION_HOST', value: '${prefix}-code' }
]
var etlEnv = [
  { name: 'ETL_LAKE_URL', value: 'abfss://${lakeContainer}@${storage.name}.dfs.${environment().suffixes.storage}/' }
  // No password: each connection gets an Entra token for the identity named by AZURE_CLIENT_ID (etl_resources/azure_sql.py).
  { name: 'ETL_WAREHOUSE_URL', value: 'mssql+pyodbc://@${sqlServer.properties.fullyQualifiedDomainName}/${warehouse.name}?driver=ODBC+Driver+18+for+SQL+Server&Encrypt=yes' }
  { name: 'ETL_SOURCES_FILE', value: '/opt/etl/config/sources.yaml' }
  { name: 'AZURE_KEYVAULT_URL', value: vault.properties.vaultUri }
]
var secrets = [
  {
    name: 'dagster-pg-password'
    keyVaultUrl: dagsterDbPassword.properties.secretUri
    identity: identity.id
  }
]
var userIdentity = {
  type: 'UserAssigned'
  userAssignedIdentities: { '${identity.id}': {} }
}

// The code location: internal only, gRPC on 4000.
resource codeLocation 'Microsoft.App/containerApps@2024-03-01' = {
  name: '${prefix}-code'
  location: location
  identity: userIdentity
  dependsOn: [lakeWriter, secretsReader]
  properties: {
    managedEnvironmentId: appsEnvironment.id
    configuration: {
      secrets: secrets
      ingress: { external: false, targetPort: 4000, transport: 'tcp', exposedPort: 4000 }
    }
    template: {
      containers: [
        {
          name: 'code'
          image: image
          env: concat(dagsterEnv, etlEnv)
          resources: { cpu: json('1.0'), memory: '2Gi' }
        }
      ]
      scale: { minReplicas: 1, maxReplicas: 1 }
    }
  }
}

// The daemon: schedules, sensors, the run queue, run monitoring. Runs execute in its container.
resource daemon 'Microsoft.App/containerApps@2024-03-01' = {
  name: '${prefix}-daemon'
  location: location
  identity: userIdentity
  dependsOn: [lakeWriter, secretsReader]
  properties: {
    managedEnvironmentId: appsEnvironment.id
    configuration: { secrets: secrets }
    template: {
      containers: [
        {
          name: 'daemon'
          image: image
          command: ['dagster-daemon', 'run', '-w', '/opt/dagster/home/workspace.yaml']
          env: concat(dagsterEnv, etlEnv)
          resources: { cpu: json('2.0'), memory: '4Gi' }
        }
      ]
      scale: { minReplicas: 1, maxReplicas: 1 }
    }
  }
}

// The UI: external HTTPS, behind Entra sign-in (Container Apps authentication).
resource webserver 'Microsoft.App/containerApps@2024-03-01' = {
  name: '${prefix}-ui'
  location: location
  identity: userIdentity
  properties: {
    managedEnvironmentId: appsEnvironment.id
    configuration: {
      secrets: secrets
      ingress: { external: true, targetPort: 3000, transport: 'http', allowInsecure: false }
    }
    template: {
      containers: [
        {
          name: 'webserver'
          image: image
          command: ['dagster-webserver', '-h', '0.0.0.0', '-p', '3000', '-w', '/opt/dagster/home/workspace.yaml']
          env: dagsterEnv
          resources: { cpu: json('0.5'), memory: '1Gi' }
        }
      ]
      scale: { minReplicas: 1, maxReplicas: 1 }
    }
  }
}

resource webserverAuth 'Microsoft.App/containerApps/authConfigs@2024-03-01' = {
  parent: webserver
  name: 'current'
  properties: {
    platform: { enabled: true }
    globalValidation: { unauthenticatedClientAction: 'RedirectToLoginPage', redirectToProvider: 'azureactivedirectory' }
    identityProviders: {
      azureActiveDirectory: {
        enabled: true
        registration: {
          clientId: uiAuthClientId
          openIdIssuer: '${environment().authentication.loginEndpoint}${tenantId}/v2.0'
        }
        validation: { allowedAudiences: ['api://${uiAuthClientId}'] }
      }
    }
  }
}

output lakeUrl string = 'abfss://${lakeContainer}@${storage.name}.dfs.${environment().suffixes.storage}/'
output warehouseServer string = sqlServer.properties.fullyQualifiedDomainName
output identityName string = identity.name
output uiUrl string = 'https://${webserver.properties.configuration.ingress.fqdn}'
