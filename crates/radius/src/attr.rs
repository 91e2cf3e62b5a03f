//! Standard attribute types (RFC 2865 §5, RFC 2866 §5, RFC 2867 §4, RFC 2868 §3,
//! RFC 2869 §5, RFC 3162 §2, RFC 4372, RFC 4675, RFC 4818, RFC 5176, RFC 6911 §3),
//! named after the FreeRADIUS dictionary (`User-Name` is [`USER_NAME`]).
//!
//! RFC 5997 (Status-Server) defines no attributes of its own; it requires
//! [`MESSAGE_AUTHENTICATOR`].

/// User-Name (RFC 2865 §5.1).
pub const USER_NAME: u8 = 1;
/// User-Password (RFC 2865 §5.2).
pub const USER_PASSWORD: u8 = 2;
/// CHAP-Password (RFC 2865 §5.3).
pub const CHAP_PASSWORD: u8 = 3;
/// NAS-IP-Address (RFC 2865 §5.4).
pub const NAS_IP_ADDRESS: u8 = 4;
/// NAS-Port (RFC 2865 §5.5).
pub const NAS_PORT: u8 = 5;
/// Service-Type (RFC 2865 §5.6).
pub const SERVICE_TYPE: u8 = 6;
/// Framed-Protocol (RFC 2865 §5.7).
pub const FRAMED_PROTOCOL: u8 = 7;
/// Framed-IP-Address (RFC 2865 §5.8).
pub const FRAMED_IP_ADDRESS: u8 = 8;
/// Framed-IP-Netmask (RFC 2865 §5.9).
pub const FRAMED_IP_NETMASK: u8 = 9;
/// Framed-Routing (RFC 2865 §5.10).
pub const FRAMED_ROUTING: u8 = 10;
/// Filter-Id (RFC 2865 §5.11).
pub const FILTER_ID: u8 = 11;
/// Framed-MTU (RFC 2865 §5.12).
pub const FRAMED_MTU: u8 = 12;
/// Framed-Compression (RFC 2865 §5.13).
pub const FRAMED_COMPRESSION: u8 = 13;
/// Login-IP-Host (RFC 2865 §5.14).
pub const LOGIN_IP_HOST: u8 = 14;
/// Login-Service (RFC 2865 §5.15).
pub const LOGIN_SERVICE: u8 = 15;
/// Login-TCP-Port (RFC 2865 §5.16).
pub const LOGIN_TCP_PORT: u8 = 16;
/// Reply-Message (RFC 2865 §5.18).
pub const REPLY_MESSAGE: u8 = 18;
/// Callback-Number (RFC 2865 §5.19).
pub const CALLBACK_NUMBER: u8 = 19;
/// Callback-Id (RFC 2865 §5.20).
pub const CALLBACK_ID: u8 = 20;
/// Framed-Route (RFC 2865 §5.22).
pub const FRAMED_ROUTE: u8 = 22;
/// Framed-IPX-Network (RFC 2865 §5.23).
pub const FRAMED_IPX_NETWORK: u8 = 23;
/// State (RFC 2865 §5.24).
pub const STATE: u8 = 24;
/// Class (RFC 2865 §5.25).
pub const CLASS: u8 = 25;
/// Vendor-Specific (RFC 2865 §5.26).
pub const VENDOR_SPECIFIC: u8 = 26;
/// Session-Timeout (RFC 2865 §5.27).
pub const SESSION_TIMEOUT: u8 = 27;
/// Idle-Timeout (RFC 2865 §5.28).
pub const IDLE_TIMEOUT: u8 = 28;
/// Termination-Action (RFC 2865 §5.29).
pub const TERMINATION_ACTION: u8 = 29;
/// Called-Station-Id (RFC 2865 §5.30).
pub const CALLED_STATION_ID: u8 = 30;
/// Calling-Station-Id (RFC 2865 §5.31).
pub const CALLING_STATION_ID: u8 = 31;
/// NAS-Identifier (RFC 2865 §5.32).
pub const NAS_IDENTIFIER: u8 = 32;
/// Proxy-State (RFC 2865 §5.33).
pub const PROXY_STATE: u8 = 33;
/// Login-LAT-Service (RFC 2865 §5.34).
pub const LOGIN_LAT_SERVICE: u8 = 34;
/// Login-LAT-Node (RFC 2865 §5.35).
pub const LOGIN_LAT_NODE: u8 = 35;
/// Login-LAT-Group (RFC 2865 §5.36).
pub const LOGIN_LAT_GROUP: u8 = 36;
/// Framed-AppleTalk-Link (RFC 2865 §5.37).
pub const FRAMED_APPLETALK_LINK: u8 = 37;
/// Framed-AppleTalk-Network (RFC 2865 §5.38).
pub const FRAMED_APPLETALK_NETWORK: u8 = 38;
/// Framed-AppleTalk-Zone (RFC 2865 §5.39).
pub const FRAMED_APPLETALK_ZONE: u8 = 39;
/// Acct-Status-Type (RFC 2866 §5.1).
pub const ACCT_STATUS_TYPE: u8 = 40;
/// Acct-Delay-Time (RFC 2866 §5.2).
pub const ACCT_DELAY_TIME: u8 = 41;
/// Acct-Input-Octets (RFC 2866 §5.3).
pub const ACCT_INPUT_OCTETS: u8 = 42;
/// Acct-Output-Octets (RFC 2866 §5.4).
pub const ACCT_OUTPUT_OCTETS: u8 = 43;
/// Acct-Session-Id (RFC 2866 §5.5).
pub const ACCT_SESSION_ID: u8 = 44;
/// Acct-Authentic (RFC 2866 §5.6).
pub const ACCT_AUTHENTIC: u8 = 45;
/// Acct-Session-Time (RFC 2866 §5.7).
pub const ACCT_SESSION_TIME: u8 = 46;
/// Acct-Input-Packets (RFC 2866 §5.8).
pub const ACCT_INPUT_PACKETS: u8 = 47;
/// Acct-Output-Packets (RFC 2866 §5.9).
pub const ACCT_OUTPUT_PACKETS: u8 = 48;
/// Acct-Terminate-Cause (RFC 2866 §5.10).
pub const ACCT_TERMINATE_CAUSE: u8 = 49;
/// Acct-Multi-Session-Id (RFC 2866 §5.11).
pub const ACCT_MULTI_SESSION_ID: u8 = 50;
/// Acct-Link-Count (RFC 2866 §5.12).
pub const ACCT_LINK_COUNT: u8 = 51;
/// Acct-Input-Gigawords (RFC 2869 §5.1).
pub const ACCT_INPUT_GIGAWORDS: u8 = 52;
/// Acct-Output-Gigawords (RFC 2869 §5.2).
pub const ACCT_OUTPUT_GIGAWORDS: u8 = 53;
/// Event-Timestamp (RFC 2869 §5.3).
pub const EVENT_TIMESTAMP: u8 = 55;
/// Egress-VLANID (RFC 4675 §2.1).
pub const EGRESS_VLANID: u8 = 56;
/// Ingress-Filters (RFC 4675 §2.2).
pub const INGRESS_FILTERS: u8 = 57;
/// Egress-VLAN-Name (RFC 4675 §2.3).
pub const EGRESS_VLAN_NAME: u8 = 58;
/// User-Priority-Table (RFC 4675 §2.4).
pub const USER_PRIORITY_TABLE: u8 = 59;
/// CHAP-Challenge (RFC 2865 §5.40).
pub const CHAP_CHALLENGE: u8 = 60;
/// NAS-Port-Type (RFC 2865 §5.41).
pub const NAS_PORT_TYPE: u8 = 61;
/// Port-Limit (RFC 2865 §5.42).
pub const PORT_LIMIT: u8 = 62;
/// Login-LAT-Port (RFC 2865 §5.43).
pub const LOGIN_LAT_PORT: u8 = 63;
/// Tunnel-Type (RFC 2868 §3.1).
pub const TUNNEL_TYPE: u8 = 64;
/// Tunnel-Medium-Type (RFC 2868 §3.2).
pub const TUNNEL_MEDIUM_TYPE: u8 = 65;
/// Tunnel-Client-Endpoint (RFC 2868 §3.3).
pub const TUNNEL_CLIENT_ENDPOINT: u8 = 66;
/// Tunnel-Server-Endpoint (RFC 2868 §3.4).
pub const TUNNEL_SERVER_ENDPOINT: u8 = 67;
/// Acct-Tunnel-Connection (RFC 2867 §4.1).
pub const ACCT_TUNNEL_CONNECTION: u8 = 68;
/// Tunnel-Password (RFC 2868 §3.5).
pub const TUNNEL_PASSWORD: u8 = 69;
/// ARAP-Password (RFC 2869 §5.4).
pub const ARAP_PASSWORD: u8 = 70;
/// ARAP-Features (RFC 2869 §5.5).
pub const ARAP_FEATURES: u8 = 71;
/// ARAP-Zone-Access (RFC 2869 §5.6).
pub const ARAP_ZONE_ACCESS: u8 = 72;
/// ARAP-Security (RFC 2869 §5.7).
pub const ARAP_SECURITY: u8 = 73;
/// ARAP-Security-Data (RFC 2869 §5.8).
pub const ARAP_SECURITY_DATA: u8 = 74;
/// Password-Retry (RFC 2869 §5.9).
pub const PASSWORD_RETRY: u8 = 75;
/// Prompt (RFC 2869 §5.10).
pub const PROMPT: u8 = 76;
/// Connect-Info (RFC 2869 §5.11).
pub const CONNECT_INFO: u8 = 77;
/// Configuration-Token (RFC 2869 §5.12).
pub const CONFIGURATION_TOKEN: u8 = 78;
/// EAP-Message (RFC 2869 §5.13, RFC 3579 §3.1).
pub const EAP_MESSAGE: u8 = 79;
/// Message-Authenticator (RFC 2869 §5.14, RFC 3579 §3.2).
pub const MESSAGE_AUTHENTICATOR: u8 = 80;
/// Tunnel-Private-Group-Id (RFC 2868 §3.6).
pub const TUNNEL_PRIVATE_GROUP_ID: u8 = 81;
/// Tunnel-Assignment-Id (RFC 2868 §3.7).
pub const TUNNEL_ASSIGNMENT_ID: u8 = 82;
/// Tunnel-Preference (RFC 2868 §3.8).
pub const TUNNEL_PREFERENCE: u8 = 83;
/// ARAP-Challenge-Response (RFC 2869 §5.15).
pub const ARAP_CHALLENGE_RESPONSE: u8 = 84;
/// Acct-Interim-Interval (RFC 2869 §5.16).
pub const ACCT_INTERIM_INTERVAL: u8 = 85;
/// Acct-Tunnel-Packets-Lost (RFC 2867 §4.2).
pub const ACCT_TUNNEL_PACKETS_LOST: u8 = 86;
/// NAS-Port-Id (RFC 2869 §5.17).
pub const NAS_PORT_ID: u8 = 87;
/// Framed-Pool (RFC 2869 §5.18).
pub const FRAMED_POOL: u8 = 88;
/// Chargeable-User-Identity (RFC 4372 §2).
pub const CHARGEABLE_USER_IDENTITY: u8 = 89;
/// Tunnel-Client-Auth-Id (RFC 2868 §3.9).
pub const TUNNEL_CLIENT_AUTH_ID: u8 = 90;
/// Tunnel-Server-Auth-Id (RFC 2868 §3.10).
pub const TUNNEL_SERVER_AUTH_ID: u8 = 91;
/// NAS-IPv6-Address (RFC 3162 §2.1).
pub const NAS_IPV6_ADDRESS: u8 = 95;
/// Framed-Interface-Id (RFC 3162 §2.2).
pub const FRAMED_INTERFACE_ID: u8 = 96;
/// Framed-IPv6-Prefix (RFC 3162 §2.3).
pub const FRAMED_IPV6_PREFIX: u8 = 97;
/// Login-IPv6-Host (RFC 3162 §2.4).
pub const LOGIN_IPV6_HOST: u8 = 98;
/// Framed-IPv6-Route (RFC 3162 §2.5).
pub const FRAMED_IPV6_ROUTE: u8 = 99;
/// Framed-IPv6-Pool (RFC 3162 §2.6).
pub const FRAMED_IPV6_POOL: u8 = 100;
/// Error-Cause (RFC 5176 §3.5).
pub const ERROR_CAUSE: u8 = 101;
/// EAP-Key-Name (RFC 4072 §6.2).
pub const EAP_KEY_NAME: u8 = 102;
/// Delegated-IPv6-Prefix (RFC 4818 §3).
pub const DELEGATED_IPV6_PREFIX: u8 = 123;
/// Framed-IPv6-Address (RFC 6911 §3.1).
pub const FRAMED_IPV6_ADDRESS: u8 = 168;
/// DNS-Server-IPv6-Address (RFC 6911 §3.2).
pub const DNS_SERVER_IPV6_ADDRESS: u8 = 169;
/// Route-IPv6-Information (RFC 6911 §3.3).
pub const ROUTE_IPV6_INFORMATION: u8 = 170;
/// Delegated-IPv6-Prefix-Pool (RFC 6911 §3.4).
pub const DELEGATED_IPV6_PREFIX_POOL: u8 = 171;
/// Stateful-IPv6-Address-Pool (RFC 6911 §3.5).
pub const STATEFUL_IPV6_ADDRESS_POOL: u8 = 172;

/// Juniper Networks vendor types (vendor 2636) inside Vendor-Specific (RFC 2865 §5.26),
/// as FreeRADIUS's `dictionary.juniper` names them.
pub mod juniper {
    /// Juniper-Local-User-Name.
    pub const LOCAL_USER_NAME: u8 = 1;
    /// Juniper-Allow-Commands.
    pub const ALLOW_COMMANDS: u8 = 2;
    /// Juniper-Deny-Commands.
    pub const DENY_COMMANDS: u8 = 3;
    /// Juniper-Allow-Configuration.
    pub const ALLOW_CONFIGURATION: u8 = 4;
    /// Juniper-Deny-Configuration.
    pub const DENY_CONFIGURATION: u8 = 5;
    /// Juniper-Interactive-Command.
    pub const INTERACTIVE_COMMAND: u8 = 8;
    /// Juniper-Configuration-Change.
    pub const CONFIGURATION_CHANGE: u8 = 9;
    /// Juniper-User-Permissions.
    pub const USER_PERMISSIONS: u8 = 10;
    /// Juniper-Junosspace-Profile.
    pub const JUNOSSPACE_PROFILE: u8 = 11;
    /// Juniper-Junosspace-Profiles.
    pub const JUNOSSPACE_PROFILES: u8 = 11;
    /// Juniper-CTP-Group.
    pub const CTP_GROUP: u8 = 21;
    /// Juniper-CTPView-APP-Group.
    pub const CTPVIEW_APP_GROUP: u8 = 22;
    /// Juniper-CTPView-OS-Group.
    pub const CTPVIEW_OS_GROUP: u8 = 23;
    /// Juniper-Primary-Dns.
    pub const PRIMARY_DNS: u8 = 31;
    /// Juniper-Primary-Wins.
    pub const PRIMARY_WINS: u8 = 32;
    /// Juniper-Secondary-Dns.
    pub const SECONDARY_DNS: u8 = 33;
    /// Juniper-Secondary-Wins.
    pub const SECONDARY_WINS: u8 = 34;
    /// Juniper-Interface-id.
    pub const INTERFACE_ID: u8 = 35;
    /// Juniper-Ip-Pool-Name.
    pub const IP_POOL_NAME: u8 = 36;
    /// Juniper-Keep-Alive.
    pub const KEEP_ALIVE: u8 = 37;
    /// Juniper-CoS-Traffic-Control-Profile.
    pub const COS_TRAFFIC_CONTROL_PROFILE: u8 = 38;
    /// Juniper-CoS-Parameter.
    pub const COS_PARAMETER: u8 = 39;
    /// Juniper-encapsulation-overhead.
    pub const ENCAPSULATION_OVERHEAD: u8 = 40;
    /// Juniper-cell-overhead.
    pub const CELL_OVERHEAD: u8 = 41;
    /// Juniper-tx-connect-speed.
    pub const TX_CONNECT_SPEED: u8 = 42;
    /// Juniper-rx-connect-speed.
    pub const RX_CONNECT_SPEED: u8 = 43;
    /// Juniper-Firewall-filter-name.
    pub const FIREWALL_FILTER_NAME: u8 = 44;
    /// Juniper-Policer-Parameter.
    pub const POLICER_PARAMETER: u8 = 45;
    /// Juniper-Local-Group-Name.
    pub const LOCAL_GROUP_NAME: u8 = 46;
    /// Juniper-Local-Interface.
    pub const LOCAL_INTERFACE: u8 = 47;
    /// Juniper-Switching-Filter.
    pub const SWITCHING_FILTER: u8 = 48;
    /// Juniper-VoIP-Vlan.
    pub const VOIP_VLAN: u8 = 49;
}
