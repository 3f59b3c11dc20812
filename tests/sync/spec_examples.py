"""Example payloads from Xero's OpenAPI description, as JSON text.

Source: XeroAPI/Xero-OpenAPI, ``xero_accounting.yaml`` (version 16.1.0), the ``example`` of the
responses named below, converted from YAML with numbers kept as written (``40.00``). Parse them
with ``json.loads(text, parse_float=Decimal)``, as the connector parses the wire.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

SOURCES = {
    "contacts": "GET /Contacts 200",
    "invoices": "GET /Invoices 200",
    "invoice": "GET /Invoices/{InvoiceID} 200",
    "invoice_updated": "POST /Invoices/{InvoiceID} 200",
    "payments": "GET /Payments 200",
    "credit_notes": "GET /CreditNotes 200",
    "history_created": "components.responses.HistoryRecordCreated",
    "history_request": "components.requestBodies.historyRecords",
    "credit_note_allocation": "PUT /CreditNotes/{CreditNoteID}/Allocations 200",
}

TEXT: dict[str, str] = {
    "contacts": (
        '{"Id": "04e93d48-e72f-4775-b7dd-15a041fab972", "Status": "OK", "ProviderName": "Xero A'
        'PI Partner", "DateTimeUTC": "/Date(1551399323399)/", "pagination": {"page": 1, "pageSi'
        'ze": 100, "pageCount": 1, "itemCount": 2}, "Contacts": [{"ContactID": "5cc8cf28-567e-4'
        'd43-b287-687cfcaec47c", "ContactStatus": "ACTIVE", "Name": "Katherine Warren", "FirstN'
        'ame": "Katherine", "LastName": "Warren", "CompanyNumber": "NumberBusiness1234", "Email'
        'Address": "kat.warren@clampett.com", "BankAccountDetails": "", "TaxNumber": "", "TaxNu'
        'mbeType": "", "Addresses": [{"AddressType": "STREET", "City": "", "Region": "", "Posta'
        'lCode": "", "Country": ""}, {"AddressType": "POBOX", "AddressLine1": "", "AddressLine2'
        '": "", "AddressLine3": "", "AddressLine4": "", "City": "Palo Alto", "Region": "CA", "P'
        'ostalCode": "94020", "Country": "United States"}], "Phones": [{"PhoneType": "DDI", "Ph'
        'oneNumber": "", "PhoneAreaCode": "", "PhoneCountryCode": ""}, {"PhoneType": "DEFAULT",'
        ' "PhoneNumber": "847-1294", "PhoneAreaCode": "(626)", "PhoneCountryCode": ""}, {"Phone'
        'Type": "FAX", "PhoneNumber": "", "PhoneAreaCode": "", "PhoneCountryCode": ""}, {"Phone'
        'Type": "MOBILE", "PhoneNumber": "", "PhoneAreaCode": "", "PhoneCountryCode": ""}], "Up'
        'datedDateUTC": "/Date(1503348544227+0000)/", "ContactGroups": [], "IsSupplier": true, '
        '"IsCustomer": true, "SalesDefaultLineAmountType": "INCLUSIVE", "PurchasesDefaultLineAm'
        'ountType": "INCLUSIVE", "Balances": {"AccountsReceivable": {"Outstanding": 760.00, "Ov'
        'erdue": 920.00}, "AccountsPayable": {"Outstanding": 231.60, "Overdue": 360.00}}, "Cont'
        'actPersons": [], "HasAttachments": false, "HasValidationErrors": false}, {"ContactID":'
        ' "3ec601ad-eddc-4ccb-a8ac-736e88293b1b", "ContactStatus": "ACTIVE", "Name": "Lisa Park'
        'er", "FirstName": "Lisa", "LastName": "Parker", "EmailAddress": "lparker@parkerandco.c'
        'om", "BankAccountDetails": "", "TaxNumber": "", "TaxNumbeType": "", "Addresses": [{"Ad'
        'dressType": "STREET", "City": "", "Region": "", "PostalCode": "", "Country": ""}, {"Ad'
        'dressType": "POBOX", "AddressLine1": "", "AddressLine2": "", "AddressLine3": "", "Addr'
        'essLine4": "", "City": "Anchorage", "Region": "AK", "PostalCode": "99501", "Country": '
        '"United States"}], "Phones": [{"PhoneType": "DDI", "PhoneNumber": "", "PhoneAreaCode":'
        ' "", "PhoneCountryCode": ""}, {"PhoneType": "DEFAULT", "PhoneNumber": "266-3583", "Pho'
        'neAreaCode": "(510)", "PhoneCountryCode": ""}, {"PhoneType": "FAX", "PhoneNumber": "",'
        ' "PhoneAreaCode": "", "PhoneCountryCode": ""}, {"PhoneType": "MOBILE", "PhoneNumber": '
        '"", "PhoneAreaCode": "", "PhoneCountryCode": ""}], "UpdatedDateUTC": "/Date(1503348546'
        '760+0000)/", "ContactGroups": [], "IsSupplier": false, "IsCustomer": false, "ContactPe'
        'rsons": [], "HasAttachments": false, "HasValidationErrors": false}]}'
    ),
    "invoices": (
        '{"Id": "900c500b-e83c-4ce2-902a-b8ba04751748", "Status": "OK", "ProviderName": "Provid'
        'er Name Example", "DateTimeUTC": "/Date(1552326816230)/", "pagination": {"page": 1, "p'
        'ageSize": 100, "pageCount": 1, "itemCount": 3}, "Invoices": [{"Type": "ACCREC", "Invoi'
        'ceID": "d4956132-ed94-4dd7-9eaa-aa22dfdf06f2", "InvoiceNumber": "INV-0001", "Reference'
        '": "Red Fish, Blue Fish", "Payments": [], "CreditNotes": [], "Prepayments": [], "Overp'
        'ayments": [], "AmountDue": 0.00, "AmountPaid": 0.00, "AmountCredited": 0.00, "SentToCo'
        'ntact": true, "CurrencyRate": 1.000000, "HasErrors": false, "IsDiscounted": false, "Ha'
        'sAttachments": false, "RepeatingInvoiceID": "428c0d75-909f-4b04-8403-a48dc27283b0", "C'
        'ontact": {"ContactID": "a3675fc4-f8dd-4f03-ba5b-f1870566bcd7", "Name": "Barney Rubble-'
        '83203", "Addresses": [], "Phones": [], "ContactGroups": [], "ContactPersons": [], "Has'
        'ValidationErrors": false}, "DateString": "2018-10-20T00:00:00", "Date": "/Date(1539993'
        '600000+0000)/", "DueDateString": "2018-12-30T00:00:00", "DueDate": "/Date(154612800000'
        '0+0000)/", "Status": "VOIDED", "LineAmountTypes": "Exclusive", "LineItems": [], "SubTo'
        'tal": 40.00, "TotalTax": 0.00, "Total": 40.00, "UpdatedDateUTC": "/Date(1541176290160+'
        '0000)/", "UpdatedDateUTCString": "2018-11-02T16:31:30Z", "CurrencyCode": "NZD"}, {"Typ'
        'e": "ACCREC", "InvoiceID": "046d8a6d-1ae1-4b4d-9340-5601bdf41b87", "InvoiceNumber": "I'
        'NV-0002", "Reference": "Red Fish, Blue Fish", "Payments": [{"PaymentID": "99ea7f6b-c51'
        '3-4066-bc27-b7c65dcd76c2", "Date": "/Date(1543449600000+0000)/", "Amount": 46.00, "Cur'
        'rencyRate": 1.000000, "HasAccount": false, "HasValidationErrors": false}], "CreditNote'
        's": [], "Prepayments": [], "Overpayments": [], "AmountDue": 0.00, "AmountPaid": 46.00,'
        ' "AmountCredited": 0.00, "SentToContact": true, "CurrencyRate": 1.000000, "HasErrors":'
        ' false, "IsDiscounted": false, "HasAttachments": false, "Contact": {"ContactID": "a367'
        '5fc4-f8dd-4f03-ba5b-f1870566bcd7", "Name": "Barney Rubble-83203", "Addresses": [], "Ph'
        'ones": [], "ContactGroups": [], "ContactPersons": [], "HasValidationErrors": false}, "'
        'DateString": "2018-10-20T00:00:00", "Date": "/Date(1539993600000+0000)/", "DueDateStri'
        'ng": "2018-12-30T00:00:00", "DueDate": "/Date(1546128000000+0000)/", "Status": "PAID",'
        ' "LineAmountTypes": "Exclusive", "LineItems": [], "SubTotal": 40.00, "TotalTax": 6.00,'
        ' "Total": 46.00, "UpdatedDateUTC": "/Date(1541176592690+0000)/", "UpdatedDateUTCString'
        '": "2018-11-02T16:36:32Z", "CurrencyCode": "NZD", "FullyPaidOnDate": "/Date(1543449600'
        '000+0000)/"}, {"Type": "ACCREC", "InvoiceID": "7ef31b20-de17-4312-8382-412f869b1510", '
        '"InvoiceNumber": "INV-0003", "Reference": "", "Payments": [], "CreditNotes": [], "Prep'
        'ayments": [], "Overpayments": [], "AmountDue": 115.00, "AmountPaid": 0.00, "AmountCred'
        'ited": 0.00, "CurrencyRate": 1.000000, "HasErrors": false, "IsDiscounted": false, "Has'
        'Attachments": false, "Contact": {"ContactID": "a3675fc4-f8dd-4f03-ba5b-f1870566bcd7", '
        '"Name": "Barney Rubble-83203", "Addresses": [], "Phones": [], "ContactGroups": [], "Co'
        'ntactPersons": [], "HasValidationErrors": false}, "DateString": "2018-11-02T00:00:00",'
        ' "Date": "/Date(1541116800000+0000)/", "DueDateString": "2018-11-07T00:00:00", "DueDat'
        'e": "/Date(1541548800000+0000)/", "Status": "AUTHORISED", "LineAmountTypes": "Exclusiv'
        'e", "LineItems": [], "SubTotal": 100.00, "TotalTax": 15.00, "Total": 115.00, "UpdatedD'
        'ateUTC": "/Date(1541176648927+0000)/", "UpdatedDateUTCString": "2018-11-02T16:37:28Z",'
        ' "CurrencyCode": "NZD"}]}'
    ),
    "invoice": (
        '{"Id": "516f400a-b764-4c88-831b-12d2b210fa24", "Status": "OK", "ProviderName": "Provid'
        'er Name Example", "DateTimeUTC": "/Date(1551981658323)/", "Invoices": [{"Type": "ACCRE'
        'C", "InvoiceID": "a03ffcd2-5d91-4c7e-b483-318584e9e439", "InvoiceNumber": "INV-0006", '
        '"Reference": "Tour", "Payments": [{"PaymentID": "38928000-e9a0-420c-8884-f624bab2a351"'
        ', "Date": "/Date(1552953600000+0000)/", "Amount": 148062.76, "Reference": "Yahoo", "Cu'
        'rrencyRate": 1.000000, "HasAccount": false, "HasValidationErrors": false}], "Prepaymen'
        'ts": [], "Overpayments": [], "AmountDue": 0.00, "AmountPaid": 148062.76, "SentToContac'
        't": false, "CurrencyRate": 1.000000, "HasErrors": false, "IsDiscounted": false, "HasAt'
        'tachments": true, "Attachments": [{"AttachmentID": "3a2fe7e0-fac7-4ea2-afb2-31cedaabd2'
        '94", "FileName": "helo-heros.jpg", "Url": "https://api.xero.com/api.xro/2.0/Invoices/a'
        '03ffcd2-5d91-4c7e-b483-318584e9e439/Attachments/helo-heros.jpg", "MimeType": "image/jp'
        'eg", "ContentLength": 2878711}], "Contact": {"ContactID": "430fa14a-f945-44d3-9f97-5df'
        '5e28441b8", "ContactStatus": "ACTIVE", "Name": "Liam Gallagher", "FirstName": "Liam", '
        '"LastName": "Gallagher", "EmailAddress": "liam@rockstar.com", "BankAccountDetails": ""'
        ', "Addresses": [{"AddressType": "STREET", "City": "", "Region": "", "PostalCode": "", '
        '"Country": "", "AttentionTo": ""}, {"AddressType": "POBOX", "City": "Anytown", "Region'
        '": "NY", "PostalCode": "10101", "Country": "USA", "AttentionTo": ""}], "Phones": [{"Ph'
        'oneType": "DEFAULT", "PhoneNumber": "222-2222", "PhoneAreaCode": "212", "PhoneCountryC'
        'ode": ""}, {"PhoneType": "DDI", "PhoneNumber": "", "PhoneAreaCode": "", "PhoneCountryC'
        'ode": ""}, {"PhoneType": "FAX", "PhoneNumber": "333-2233", "PhoneAreaCode": "212", "Ph'
        'oneCountryCode": ""}, {"PhoneType": "MOBILE", "PhoneNumber": "444-3433", "PhoneAreaCod'
        'e": "212", "PhoneCountryCode": ""}], "UpdatedDateUTC": "/Date(1551747281053+0000)/", "'
        'ContactGroups": [{"ContactGroupID": "17b44ed7-4389-4162-91cb-3dd5766e4e22", "Name": "O'
        'asis", "Status": "ACTIVE", "Contacts": [], "HasValidationErrors": false}], "IsSupplier'
        '": true, "IsCustomer": true, "SalesTrackingCategories": [], "PurchasesTrackingCategori'
        'es": [], "ContactPersons": [{"FirstName": "Debbie", "LastName": "Gwyther", "EmailAddre'
        'ss": "debbie@rockstar.com", "IncludeInEmails": false}], "HasValidationErrors": false},'
        ' "DateString": "2019-03-07T00:00:00", "Date": "/Date(1551916800000+0000)/", "DueDateSt'
        'ring": "2019-03-13T00:00:00", "DueDate": "/Date(1552435200000+0000)/", "Status": "PAID'
        '", "LineAmountTypes": "Exclusive", "LineItems": [{"ItemCode": "123", "Description": "G'
        'uitars Fender Strat", "UnitAmount": 148062.76, "TaxType": "NONE", "TaxAmount": 0.00, "'
        'LineAmount": 148062.76, "AccountCode": "200", "Tracking": [], "Quantity": 1.0000, "Lin'
        'eItemID": "b18f39d9-7739-4246-9288-72afe939d2d5", "ValidationErrors": []}], "SubTotal"'
        ': 148062.76, "TotalTax": 0.00, "Total": 148062.76, "UpdatedDateUTC": "/Date(1551981568'
        '133+0000)/", "UpdatedDateUTCString": "2019-03-07T17:59:28Z", "CurrencyCode": "NZD", "F'
        'ullyPaidOnDate": "/Date(1552953600000+0000)/", "StatusAttributeString": "ERROR", "Vali'
        'dationErrors": [{"Message": "Invoice # must be unique."}]}]}'
    ),
    "invoice_updated": (
        '{"Id": "bd83b60e-9d16-4a3b-9f59-0a2d0ccd35f2", "Status": "OK", "ProviderName": "Provid'
        'er Name Example", "DateTimeUTC": "/Date(1552329729002)/", "Invoices": [{"Type": "ACCRE'
        'C", "InvoiceID": "4074292c-09b3-456d-84e7-add864c6c39b", "InvoiceNumber": "INV-0008", '
        '"Reference": "My the Force be With You", "Prepayments": [], "Overpayments": [], "Amoun'
        'tDue": 575.00, "AmountPaid": 0.00, "SentToContact": false, "CurrencyRate": 1.000000, "'
        'HasErrors": false, "IsDiscounted": false, "Contact": {"ContactID": "be392c72-c121-4f83'
        '-9512-03ac71e54c20", "ContactStatus": "ACTIVE", "Name": "Luke Skywalker", "EmailAddres'
        's": "", "BankAccountDetails": "", "Addresses": [{"AddressType": "STREET", "City": "", '
        '"Region": "", "PostalCode": "", "Country": ""}, {"AddressType": "POBOX", "City": "", "'
        'Region": "", "PostalCode": "", "Country": ""}], "Phones": [{"PhoneType": "DEFAULT", "P'
        'honeNumber": "", "PhoneAreaCode": "", "PhoneCountryCode": ""}, {"PhoneType": "DDI", "P'
        'honeNumber": "", "PhoneAreaCode": "", "PhoneCountryCode": ""}, {"PhoneType": "FAX", "P'
        'honeNumber": "", "PhoneAreaCode": "", "PhoneCountryCode": ""}, {"PhoneType": "MOBILE",'
        ' "PhoneNumber": "", "PhoneAreaCode": "", "PhoneCountryCode": ""}], "UpdatedDateUTC": "'
        '/Date(1552329691573+0000)/", "ContactGroups": [], "IsSupplier": false, "IsCustomer": t'
        'rue, "DefaultCurrency": "NZD", "SalesTrackingCategories": [], "PurchasesTrackingCatego'
        'ries": [], "ContactPersons": [], "HasValidationErrors": false}, "DateString": "2019-03'
        '-11T00:00:00", "Date": "/Date(1552262400000+0000)/", "DueDateString": "2019-03-12T00:0'
        '0:00", "DueDate": "/Date(1552348800000+0000)/", "Status": "SUBMITTED", "LineAmountType'
        's": "Exclusive", "LineItems": [{"Description": "Light Saber", "UnitAmount": 500.00, "T'
        'axType": "OUTPUT2", "TaxAmount": 75.00, "LineAmount": 500.00, "AccountCode": "200", "T'
        'racking": [], "Quantity": 1.0000, "LineItemID": "6de1bf9f-de95-4c47-9287-37305db758c9"'
        ', "ValidationErrors": []}], "SubTotal": 500.00, "TotalTax": 75.00, "Total": 575.00, "U'
        'pdatedDateUTC": "/Date(1552329728987+0000)/", "UpdatedDateUTCString": "2019-03-11T18:4'
        '2:08Z", "CurrencyCode": "NZD"}]}'
    ),
    "payments": (
        '{"Id": "9f310473-e1b5-4704-a25c-eec653deb596", "Status": "OK", "ProviderName": "Provid'
        'er Name Example", "DateTimeUTC": "/Date(1552431874205)/", "pagination": {"page": 1, "p'
        'ageSize": 100, "pageCount": 1, "itemCount": 2}, "Payments": [{"PaymentID": "99ea7f6b-c'
        '513-4066-bc27-b7c65dcd76c2", "BatchPaymentID": "b54aa50c-794c-461b-89d1-846e1b84d9c0",'
        ' "BatchPayment": {"Account": {"AccountID": "5690f1e8-1d02-4893-90c2-ee1a69eff942"}, "B'
        'atchPaymentID": "b54aa50c-794c-461b-89d1-846e1b84d9c0", "Date": "/Date(1552521600000+0'
        '000)/", "Type": "RECBATCH", "Status": "AUTHORISED", "TotalAmount": "50.00", "UpdatedDa'
        'teUTC": "/Date(1541176592690+0000)/", "IsReconciled": "false"}, "Date": "/Date(1543449'
        '600000+0000)/", "BankAmount": 46.00, "Amount": 46.00, "Reference": "", "CurrencyRate":'
        ' 1.000000, "PaymentType": "ACCRECPAYMENT", "Status": "AUTHORISED", "UpdatedDateUTC": "'
        '/Date(1541176592690+0000)/", "UpdatedDateUTCString": "2018-11-02T16:36:32Z", "HasAccou'
        'nt": true, "IsReconciled": false, "Account": {"AccountID": "5690f1e8-1d02-4893-90c2-ee'
        '1a69eff942", "Code": "970"}, "Invoice": {"Type": "ACCREC", "InvoiceID": "046d8a6d-1ae1'
        '-4b4d-9340-5601bdf41b87", "InvoiceNumber": "INV-0002", "Payments": [], "CreditNotes": '
        '[], "Prepayments": [], "Overpayments": [], "HasErrors": false, "IsDiscounted": false, '
        '"Contact": {"ContactID": "a3675fc4-f8dd-4f03-ba5b-f1870566bcd7", "ContactNumber": "", '
        '"Name": "Barney Rubble-83203", "Addresses": [], "Phones": [], "ContactGroups": [], "Co'
        'ntactPersons": [], "HasValidationErrors": false}, "LineItems": [], "CurrencyCode": "NZ'
        'D"}, "HasValidationErrors": false}, {"PaymentID": "6b037c9b-2e5d-4905-84d3-eabfb343824'
        '2", "Date": "/Date(1552521600000+0000)/", "BankAmount": 2.00, "Amount": 2.00, "Referen'
        'ce": "Too much", "CurrencyRate": 1.000000, "PaymentType": "ARCREDITPAYMENT", "Status":'
        ' "AUTHORISED", "UpdatedDateUTC": "/Date(1551812346173+0000)/", "UpdatedDateUTCString":'
        ' "2019-03-05T18:59:06Z", "HasAccount": true, "IsReconciled": false, "Account": {"Accou'
        'ntID": "136ebd08-60ea-4592-8982-be92c153b53a", "Code": "980"}, "Invoice": {"Type": "AC'
        'CRECCREDIT", "InvoiceID": "249f15fa-f2a7-4acc-8769-0984103f2225", "InvoiceNumber": "CN'
        '-0005", "Payments": [], "CreditNotes": [], "Prepayments": [], "Overpayments": [], "Has'
        'Errors": false, "IsDiscounted": false, "Contact": {"ContactID": "430fa14a-f945-44d3-9f'
        '97-5df5e28441b8", "ContactNumber": "", "Name": "Liam Gallagher", "Addresses": [], "Pho'
        'nes": [], "ContactGroups": [], "ContactPersons": [], "HasValidationErrors": false}, "L'
        'ineItems": [], "CurrencyCode": "NZD"}, "HasValidationErrors": false}]}'
    ),
    "credit_notes": (
        '{"Id": "306379b0-3d75-4c77-953a-be08fa0efae8", "Status": "OK", "ProviderName": "Provid'
        'er Name Example", "DateTimeUTC": "/Date(1551812506620)/", "pagination": {"page": 1, "p'
        'ageSize": 100, "pageCount": 1, "itemCount": 2}, "CreditNotes": [{"CreditNoteID": "249f'
        '15fa-f2a7-4acc-8769-0984103f2225", "CreditNoteNumber": "CN-0005", "Payments": [{"Payme'
        'ntID": "6b037c9b-2e5d-4905-84d3-eabfb3438242", "Date": "/Date(1552521600000+0000)/", "'
        'Amount": 2.00, "Reference": "Too much", "CurrencyRate": 1.000000, "HasAccount": false,'
        ' "HasValidationErrors": false}], "ID": "249f15fa-f2a7-4acc-8769-0984103f2225", "Curren'
        'cyRate": 1.000000, "Type": "ACCRECCREDIT", "Reference": "US Tour", "RemainingCredit": '
        '32.50, "Allocations": [], "HasAttachments": true, "Contact": {"ContactID": "430fa14a-f'
        '945-44d3-9f97-5df5e28441b8", "Name": "Liam Gallagher", "Addresses": [], "Phones": [], '
        '"ContactGroups": [], "ContactPersons": [], "HasValidationErrors": false}, "DateString"'
        ': "2019-03-05T00:00:00", "Date": "/Date(1551744000000+0000)/", "Status": "AUTHORISED",'
        ' "LineAmountTypes": "Exclusive", "LineItems": [], "SubTotal": 30.00, "TotalTax": 4.50,'
        ' "Total": 34.50, "UpdatedDateUTC": "/Date(1551812346157+0000)/", "UpdatedDateUTCString'
        '": "2019-03-05T18:59:06Z", "CurrencyCode": "NZD"}, {"CreditNoteID": "f8021bd2-9a6a-4c1'
        '9-8477-163da0b9290f", "CreditNoteNumber": "", "Payments": [], "ID": "f8021bd2-9a6a-4c1'
        '9-8477-163da0b9290f", "CurrencyRate": 1.000000, "Type": "ACCPAYCREDIT", "Reference": "'
        '", "RemainingCredit": 46.00, "Allocations": [], "HasAttachments": false, "Contact": {"'
        'ContactID": "430fa14a-f945-44d3-9f97-5df5e28441b8", "Name": "Liam Gallagher", "Address'
        'es": [], "Phones": [], "ContactGroups": [], "ContactPersons": [], "HasValidationErrors'
        '": false}, "DateString": "2019-01-05T00:00:00", "Date": "/Date(1546646400000+0000)/", '
        '"Status": "DRAFT", "LineAmountTypes": "Exclusive", "LineItems": [], "SubTotal": 40.00,'
        ' "TotalTax": 6.00, "Total": 46.00, "UpdatedDateUTC": "/Date(1551812506153+0000)/", "Up'
        'datedDateUTCString": "2019-03-05T19:01:46Z", "CurrencyCode": "NZD"}]}'
    ),
    "history_created": (
        '{"Id": "d7525479-3392-44c0-bb37-ff4a0b5df5bd", "Status": "OK", "ProviderName": "Xero A'
        'PI Partner", "DateTimeUTC": "/Date(1550899400362)/", "HistoryRecords": [{"DateUTCStrin'
        'g": "2019-02-23T05:23:20", "DateUTC": "/Date(1550899400362)/", "Details": "Hello World'
        '", "ValidationErrors": []}]}'
    ),
    "history_request": ('{"HistoryRecords": [{"Details": "Hello World"}]}'),
    "credit_note_allocation": (
        '{"Id": "73452751-6eaa-4bcb-86f5-4c013316f4cf", "Status": "OK", "ProviderName": "Provid'
        'er Name Example", "DateTimeUTC": "/Date(1551828543255)/", "Allocations": [{"Amount": 1'
        '.00, "Date": "/Date(1551744000000+0000)/", "Invoice": {"InvoiceID": "c45720a1-ade3-4a3'
        '8-a064-d15489be6841", "Payments": [], "CreditNotes": [], "Prepayments": [], "Overpayme'
        'nts": [], "HasErrors": false, "IsDiscounted": false, "LineItems": [], "ValidationError'
        's": []}, "CreditNote": {"CreditNoteID": "7be578f5-63af-45c8-9b00-dcc4732baf0b", "ID": '
        '"7be578f5-63af-45c8-9b00-dcc4732baf0b", "LineItems": []}, "ValidationErrors": []}]}'
    ),
}


def example(name: str) -> dict[str, Any]:
    """The parsed example, numbers as Decimal."""
    return json.loads(TEXT[name], parse_float=Decimal)
